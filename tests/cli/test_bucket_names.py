"""Bucket names follow S3's rules for general purpose buckets, in every s3:// URI and in ``ndr seed provision``."""

import pytest
from typer.testing import CliRunner

from ndr_jobs.cli import app
from ndr_resources.errors import InputDataError
from ndr_resources.lake import split_s3_uri, validate_bucket_name

VALID = ["abc", "ndr-test", "my.bucket.name", "a1-b2.c3", "x" * 63, "1.2.3", "xn-a", "data--x-s3z"]
INVALID = {
    "ab": "3 to 63 characters long, not 2",
    "x" * 64: "3 to 63 characters long, not 64",
    "b..ad": "two adjacent dots",
    "Upper": "only lowercase letters, digits, dots and hyphens",
    "under_score": "only lowercase letters, digits, dots and hyphens",
    "-start": "start and end with a letter or digit",
    "end.": "start and end with a letter or digit",
    "192.168.5.4": "formatted as an IP address",
    "xn--bucket": "starts with a prefix S3 reserves",
    "sthree-bucket": "starts with a prefix S3 reserves",
    "amzn-s3-demo-bucket": "starts with a prefix S3 reserves",
    "bucket-s3alias": "ends with a suffix S3 reserves",
    "bucket--ol-s3": "ends with a suffix S3 reserves",
    "bucket.mrap": "ends with a suffix S3 reserves",
    "bucket--x-s3": "ends with a suffix S3 reserves",
}


@pytest.mark.parametrize("name", VALID)
def test_valid_names_pass(name):
    assert validate_bucket_name(name) == name
    assert split_s3_uri(f"s3://{name}/a/b") == (name, "a/b")


@pytest.mark.parametrize("name,problem", INVALID.items())
def test_invalid_names_are_refused_with_the_rule(name, problem):
    with pytest.raises(ValueError, match=problem):
        validate_bucket_name(name)
    with pytest.raises(InputDataError, match=problem) as raised:
        split_s3_uri(f"s3://{name}/a/b")
    assert str(raised.value).startswith(f"s3://{name}/a/b: ")


def test_seed_provision_refuses_a_bucket_s3_would_refuse(scratch):
    _cwd, home = scratch
    result = CliRunner().invoke(app, ["seed", "provision", "--project", "ndr-acme-finance", "--bucket", "b..ad",
                                      "--org1", "acme", "--org2", "finance"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "bucket name 'b..ad' has two adjacent dots" in result.output
    assert not (home / "parameters.sqlite").exists()
