# gradd client: a graph registered once, then only values (Python standard library).
# Run: python3 examples/python/grad_registered.py   (GRADD_URL overrides the server)
import json, os, urllib.error, urllib.request

URL = os.environ.get("GRADD_URL", "http://localhost:8080")
GRAPH = {"nodes": [
    {"name": "x", "op": "input"}, {"name": "y", "op": "input"},
    {"name": "w", "op": "variable"}, {"name": "b", "op": "variable"},
    {"name": "xw", "op": "mul", "inputs": ["x", "w"]},
    {"name": "p", "op": "add", "inputs": ["xw", "b"]},
    {"name": "r", "op": "sub", "inputs": ["p", "y"]},
    {"name": "r2", "op": "square", "inputs": ["r"]},
    {"name": "loss", "op": "mean", "inputs": ["r2"]}]}

def post(path, body):
    req = urllib.request.Request(URL + path, data=json.dumps(body).encode())
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)

def register():
    return post("/v1/graphs", {"graph": GRAPH})["graph_id"]

def grad(graph_id, values):
    """The gradient by graph_id; a replica that no longer holds the graph
    answers 404 unknown_graph: register it again and retry."""
    try:
        return graph_id, post("/v1/grad", {"graph_id": graph_id, "values": values, "target": "loss"})
    except urllib.error.HTTPError as e:
        if e.code != 404 or json.load(e)["error"]["code"] != "unknown_graph":
            raise
    graph_id = register()
    return graph_id, post("/v1/grad", {"graph_id": graph_id, "values": values, "target": "loss"})

graph_id = register()
w, b = 0.0, 0.0
data = {"x": [1.0, 2.0, 3.0, 4.0], "y": [3.0, 5.0, 7.0, 9.0]}   # y = 2x + 1
for step in range(200):
    graph_id, answer = grad(graph_id, dict(data, w=w, b=b))
    w -= 0.05 * answer["gradients"]["w"]
    b -= 0.05 * answer["gradients"]["b"]
    if step % 50 == 0:
        print(f"step {step}: loss {answer['target']['loss']:.6f}")
print(f"w = {w:.3f}, b = {b:.3f}")
