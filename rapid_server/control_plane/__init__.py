"""The Lambda control plane: the function operations boto3 and `aws lambda create-function` call
(botocore's `lambda` service model). `routes.py` is the front door, `store.py` what survives a restart,
`shapes.py` the FunctionConfiguration the service renders. `layers.py` publishes and resolves layers,
`settings.py` keeps a function's reserved concurrency, tags and event invoke config (their routes:
`settings_routes.py`), and `code_limits.py` the code-size limits with the service's errors."""
