import os

from common import respond  # from the CommonLayer


def handler(event, context):
    return respond(200, {"message": os.environ["GREETING"], "stage": os.environ["STAGE"]})
