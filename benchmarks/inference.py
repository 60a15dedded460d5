"""Rows per second scored by ``score_windows``, in process and through an HTTP InvokeEndpoint peer.

    .venv/bin/python -m benchmarks.inference [--rows N] [--features K] [--payload-records R] [--workers W]

Fits a real IsolationForest bundle (100 trees, 256 samples) on K synthetic features, then times:

1. the serving functions alone (``predict_fn`` + ``output_fn`` on R-record frames, explanations included);
2. ``score_windows`` with the in-process invoker on N rows in 2 partitions;
3. ``score_windows`` with the boto3 SageMaker client against the loopback InvokeEndpoint peer of
   the tests (a threaded ``http.server`` in this process that scores with the same functions).

Each Spark figure follows a warm-up run on 1,000 rows (Python workers started, bundle loaded), so
it is the steady-state cost of a window. Timed figures depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=60)
    parser.add_argument("--payload-records", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from ndr_assets.models import serving
    from ndr_assets.models.scoring import score_windows
    from ndr_resources.model_invokers import InProcessInvoker, SageMakerInvoker
    from ndr_resources.model_specs import EndpointConfig
    from ndr_resources.spark import build_spark_session
    from tests.models.bundles import make_bundle, training_rows, write_bundle
    from tests.models.sagemaker_peer import SageMakerPeer
    from tests.moto_server import FAKE_AWS_ENV

    features = [f"f{i:02d}" for i in range(args.features)]
    bundle = make_bundle(features, rows=4000, n_estimators=100)
    model_dir = write_bundle(tempfile.mkdtemp(prefix="ndr-bench-model-"), bundle)
    raw = training_rows(args.rows, args.features, seed=99)
    frame = pd.DataFrame(raw, columns=features)
    frame.insert(0, "record_id", [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(args.rows)])

    chunk = frame.iloc[: args.payload_records]
    started = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        serving.output_fn(serving.predict_fn(chunk, bundle), serving.JSON)
    per_payload = (time.perf_counter() - started) / repeats
    print(f"serving functions alone: {per_payload * 1000:.1f} ms per {len(chunk)}-record payload "
          f"({len(chunk) / per_payload:,.0f} rows/s on one thread, top {serving.DEFAULT_TOP_FEATURES} features explained)")

    for name, value in FAKE_AWS_ENV.items():
        os.environ[name] = value
    spark = build_spark_session("local[2]", app_name="ndr-bench-inference", conf={"spark.sql.shuffle.partitions": "2"})
    spark.sparkContext.environment.update(FAKE_AWS_ENV)
    config = EndpointConfig(endpoint_name="ndr-bench", max_records_per_payload=args.payload_records,
                            max_workers=args.workers, backoff_seconds=0.05)
    data = spark.createDataFrame(frame).repartition(2).localCheckpoint(eager=True)
    warm_up = spark.createDataFrame(frame.iloc[:1000]).repartition(2)
    peer = SageMakerPeer(model_dir).start()
    try:
        for label, invoker in (
            ("in process", InProcessInvoker(model_dir)),
            ("HTTP (boto3 -> loopback peer)", SageMakerInvoker("ndr-bench", region="us-east-1", endpoint_url=peer.url)),
        ):
            score_windows(warm_up, feature_columns=features, record_id_col="record_id", invoker=invoker, config=config)
            started = time.perf_counter()
            result = score_windows(data, feature_columns=features, record_id_col="record_id", invoker=invoker,
                                   config=config)
            seconds = time.perf_counter() - started
            assert result.ok, result.failure_summary()
            print(f"score_windows {label}: {args.rows:,} rows x {args.features} features in {seconds:.1f} s = "
                  f"{args.rows / seconds:,.0f} rows/s ({result.payloads} payloads, {result.calls} calls, "
                  f"{args.workers} threads per task, 2 tasks)")
        expected = serving.scores_and_contributions(raw, bundle)[0]
        got = result.scored.select("prediction_score").toPandas()["prediction_score"].sort_values().to_numpy()
        print(f"scores equal the model's own: {bool(np.array_equal(np.sort(expected), got))}")
    finally:
        peer.stop()
        spark.stop()


if __name__ == "__main__":
    main()
