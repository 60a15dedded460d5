"""The one place where resources are chosen per environment (``NDR_ENV=local|aws``).

``local`` is the embedded default: SQLite parameter store, a local folder as the lake, local Spark —
real implementations of the same interfaces as the AWS ones. Nothing is chosen at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndr_resources.feature_store import LocalFeatureStore, SageMakerFeatureStore
from ndr_resources.lake import LocalLake, S3Lake
from ndr_resources.model_endpoint import InProcessModelEndpoint, SageMakerModelEndpoint
from ndr_resources.model_registry import LocalModelRegistry, SageMakerModelRegistry
from ndr_resources.parameter_store.base import ParameterStore
from ndr_resources.parameter_store.dynamodb import DynamoDBParameterStore
from ndr_resources.parameter_store.sqlite import SqliteParameterStore
from ndr_resources.spark import SparkResource
from ndr_resources.warehouse import LocalWarehouse, RedshiftWarehouse

ENVIRONMENTS = ("local", "aws")
HOME_ENV = "NDR_HOME"
WAREHOUSE_TABLES_ENV = "NDR_WAREHOUSE_TABLES_URI"  # the embedded warehouse's LocalWarehouse.tables_uri
MODEL_REGISTRY_ENV = "NDR_MODEL_REGISTRY_URI"  # the embedded registry's tables (default: its own folder in the lake)
DEFAULT_LOCAL_REGISTRY_URI = "s3://ndr-local-registry/registry/"
DEFAULT_HOME = ".ndr"


@dataclass(frozen=True)
class LocalPaths:
    """Where the embedded defaults keep their state: ``$NDR_HOME`` (default ``./.ndr``)."""

    home: Path

    @classmethod
    def from_env(cls) -> LocalPaths:
        return cls.resolve(None)

    @classmethod
    def resolve(cls, home: Path | str | None) -> LocalPaths:
        """Every command's rule: an explicit ``--home`` wins, then ``$NDR_HOME``, then ``./.ndr``."""
        return cls(Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve())

    @property
    def parameters_db(self) -> Path:
        return self.home / "parameters.sqlite"

    @property
    def lake_root(self) -> Path:
        return self.home / "lake"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def spark_driver_log(self) -> Path:
        return self.home / "logs" / "spark-driver.log"


def current_environment() -> str:
    env = os.environ.get("NDR_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ValueError(f"NDR_ENV must be one of {ENVIRONMENTS}, got {env!r}")
    return env


def resources_for(env: str) -> dict[str, Any]:
    """Resource instances keyed as the assets expect them."""
    if env == "local":
        paths = LocalPaths.from_env()
        return {
            "parameter_store": SqliteParameterStore(path=str(paths.parameters_db)),
            "lake": LocalLake(root=str(paths.lake_root)),
            "spark": SparkResource(
                master=os.environ.get("NDR_SPARK_MASTER", "local[2]"), driver_log=str(paths.spark_driver_log)
            ),
            # Dimension tables of the embedded warehouse: <tables_uri>/<schema>/<table>/ in the lake,
            # where the deployment says (no default: the platform knows no bucket of its own).
            "warehouse": LocalWarehouse(lake_root=str(paths.lake_root), tables_uri=os.environ.get(WAREHOUSE_TABLES_ENV)),
            # The trained artifact served in process by the same serving functions SageMaker runs.
            "model_endpoint": InProcessModelEndpoint(),
            "model_registry": LocalModelRegistry(
                lake_root=str(paths.lake_root), registry_uri=os.environ.get(MODEL_REGISTRY_ENV) or DEFAULT_LOCAL_REGISTRY_URI
            ),
            "feature_store": LocalFeatureStore(lake_root=str(paths.lake_root)),
        }
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return {
        "parameter_store": DynamoDBParameterStore(region_name=region),
        "lake": S3Lake(region_name=region),
        "spark": SparkResource(master=os.environ.get("NDR_SPARK_MASTER", "local[*]")),
        "warehouse": RedshiftWarehouse(),
        "model_endpoint": SageMakerModelEndpoint(region_name=region),
        "model_registry": SageMakerModelRegistry(region_name=region),
        "feature_store": SageMakerFeatureStore(region_name=region),
    }


def parameter_store_for(env: str) -> ParameterStore:
    return resources_for(env)["parameter_store"]
