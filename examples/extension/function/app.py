def handler(event, context):
    print(f"hello, {event.get('name', 'world')}")
    return {"greeting": f"hello, {event.get('name', 'world')}"}
