"""Where `diagnose --bundle` writes: the default name, a folder, a file, and never over another bundle."""

from datetime import UTC, datetime

import pytest

from ops.diagnosis.bundle import target
from ops.errors import UsageError

NOW = datetime(2026, 12, 1, 18, 9, 15, tzinfo=UTC)


def test_the_default_name_goes_in_the_folder_given_or_the_current_one(tmp_path):
    assert target(None, "homer", tmp_path, NOW) == tmp_path / "homer-diagnose-homer-20261201T180915Z.tar.gz"
    (tmp_path / "out").mkdir()
    assert target("out", "s", tmp_path, NOW).parent == tmp_path / "out"
    assert target("mine.tar.gz", "s", tmp_path, NOW) == tmp_path / "mine.tar.gz"


def test_a_second_bundle_in_the_same_second_does_not_replace_the_first(tmp_path):
    first = target(None, "homer", tmp_path, NOW)
    first.write_bytes(b"earlier")
    second = target(None, "homer", tmp_path, NOW)
    assert second.name == "homer-diagnose-homer-20261201T180915Z-2.tar.gz"
    second.write_bytes(b"")
    assert target(None, "homer", tmp_path, NOW).name.endswith("Z-3.tar.gz")
    assert first.read_bytes() == b"earlier"


def test_a_parent_that_is_not_a_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="is not a directory"):
        target("missing/bundle.tar.gz", "homer", tmp_path, NOW)
