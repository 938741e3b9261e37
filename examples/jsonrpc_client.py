#!/usr/bin/env python3
"""JSON-RPC 2.0 over HTTP against protofuse, with nothing but the Python standard library.

Usage: python3 examples/jsonrpc_client.py [URL]   (default http://127.0.0.1:8080/rpc)

Sends two messages for one customer (the second twice, to show idempotency), pages the conversation's
history one message at a time, and lists the customer's conversations in a batch call. Exits non-zero on any
unexpected answer, so it doubles as a smoke test.
"""

import json
import sys
import urllib.request
import uuid

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/rpc"
_next_id = 0


def post(payload):
    """POSTs one JSON-RPC request or batch; returns the decoded answer (None for notifications)."""
    request = urllib.request.Request(
        URL, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def call(method, params):
    global _next_id
    _next_id += 1
    answer = post({"jsonrpc": "2.0", "id": _next_id, "method": method, "params": params})
    if "error" in answer:
        raise SystemExit(f"{method} failed: {answer['error']}")
    return answer["result"]


def main():
    customer = f"py-{uuid.uuid4().hex[:8]}"
    first = call("message.send", {
        "channel": "web",
        "sender": {"role": "customer", "external_id": customer},
        "content": {"type": "text", "text": "Hello from Python"},
        "idempotency_key": f"{customer}-1",
    })
    conversation = first["message"]["conversation_id"]
    print(f"sent {first['message']['id']} into conversation {conversation}")

    second = {
        "conversation_id": conversation,
        "sender": {"role": "customer", "external_id": customer},
        "content": {"type": "text", "text": "Where is my parcel?"},
        "idempotency_key": f"{customer}-2",
    }
    call("message.send", second)
    again = call("message.send", second)
    assert again["duplicate"] is True, again
    print("the repeated send was recognised as a duplicate")

    cursor, texts = None, []
    while True:
        params = {"id": conversation, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = call("conversation.messages", params)
        texts += [m["content"]["text"] for m in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert texts == ["Hello from Python", "Where is my parcel?"], texts
    print(f"history, one page at a time: {texts}")

    batch = post([
        {"jsonrpc": "2.0", "id": "get", "method": "conversation.get", "params": {"id": conversation}},
        {"jsonrpc": "2.0", "id": "list", "method": "conversation.list", "params": {"customer": customer}},
        {"jsonrpc": "2.0", "id": "oops", "method": "no.such.method"},
    ])
    answers = {a["id"]: a for a in batch}
    assert answers["get"]["result"]["customer_id"] == customer, answers
    assert len(answers["list"]["result"]["items"]) == 1, answers
    assert answers["oops"]["error"]["code"] == -32601, answers
    print(f"batch: conversation status {answers['get']['result']['status']}, unknown method -> -32601")
    print("ok")


if __name__ == "__main__":
    main()
