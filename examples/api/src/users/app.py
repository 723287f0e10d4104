from common import respond  # from the CommonLayer


def handler(event, context):
    user_id = (event.get("pathParameters") or {}).get("id", "unknown")
    return respond(200, {"id": user_id, "name": f"user {user_id}"})
