"""The Lambda control plane: the function operations boto3 and `aws lambda create-function` call
(botocore's `lambda` service model). `routes.py` is the front door, `store.py` what survives a restart,
`shapes.py` the FunctionConfiguration the service renders."""
