from tests.resources.moto_server import moto_endpoint  # noqa: F401  (shared session fixture)
