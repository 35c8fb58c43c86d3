"""Nothing printed or saved shows a password."""

from ops.secrets import MASK, mask_dsn, new_password, redact


def test_mask_dsn_hides_the_password():
    masked = mask_dsn("postgresql+psycopg://homer:s3cr3t-pw@127.0.0.1:5433/homer")
    assert "s3cr3t-pw" not in masked and f"homer:{MASK}@127.0.0.1:5433" in masked


def test_redact_masks_known_secrets_dsns_and_assignments():
    text = (
        "url=postgresql://u:hunter2@h/db PGPASSWORD=abc123 POSTGRES_PASSWORD: 'xyz' token other-secret-value"
    )
    out = redact(text, ["other-secret-value"])
    for secret in ("hunter2", "abc123", "xyz", "other-secret-value"):
        assert secret not in out
    assert out.count(MASK) == 4


def test_passwords_are_random_and_long():
    first, second = new_password(), new_password()
    assert first != second and len(first) >= 24
