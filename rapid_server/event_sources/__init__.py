"""Event source mappings: pollers that read a queue and invoke a function with each batch, as Lambda's
event source mapping service does for Amazon SQS.

`mapping.py` is what a mapping is (and its checks), `store.py` the mappings the API created (they survive a
restart), `sqs.py` the queue through boto3, `batch.py` the contract of one batch (the event, and what the
function's answer deletes), `poller.py` one mapping's pollers and their scaling, `manager.py` every mapping
of the server and the API's operations, `routes.py` the API's front door."""
