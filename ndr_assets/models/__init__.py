"""The Isolation Forest half of the graph: training, the serving contract, scoring, explanations.

``bundle`` fixes what a trained model is (one joblib file of plain sklearn/numpy/python values, so
SageMaker's scikit-learn container can load it without this package); ``serving`` is the code that
container runs (``model_fn``/``input_fn``/``predict_fn``/``output_fn``), and the embedded endpoint
calls the same functions in process.
"""
