# gradd client: binary framing, Python standard library only.
# Run: python3 examples/python/grad_binary.py   (GRADD_URL overrides the server)
import json, os, struct, urllib.request

URL = os.environ.get("GRADD_URL", "http://localhost:8080")

def f64(values):
    return struct.pack(f"<{len(values)}d", *values)

X = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]          # [3, 2], row-major
y = [1.0, 2.0, 3.0]
w = [0.5, -0.5]
binary = f64(X) + f64(y) + f64(w)
request = {
    "graph": {"nodes": [
        {"name": "X", "op": "input"}, {"name": "y", "op": "input"},
        {"name": "w", "op": "variable"},
        {"name": "Xw", "op": "matmul", "inputs": ["X", "w"]},
        {"name": "r", "op": "sub", "inputs": ["Xw", "y"]},
        {"name": "r2", "op": "square", "inputs": ["r"]},
        {"name": "loss", "op": "mean", "inputs": ["r2"]}]},
    "values": {
        "X": {"shape": [3, 2], "dtype": "float64", "offset": 0, "nbytes": 48},
        "y": {"shape": [3], "dtype": "float64", "offset": 48, "nbytes": 24},
        "w": {"shape": [2], "dtype": "float64", "offset": 72, "nbytes": 16}},
    "target": "loss",
    "tensor_format": "binary"}
body = json.dumps(request).encode()
req = urllib.request.Request(URL + "/v1/grad", data=body + binary, headers={
    "Content-Type": "application/vnd.gradd.v1+binary",
    "Gradd-Json-Length": str(len(body))})
with urllib.request.urlopen(req) as resp:
    n = int(resp.headers["Gradd-Json-Length"])
    raw = resp.read()
answer, section = json.loads(raw[:n]), raw[n:]

def tensor(t):
    data = section[t["offset"]:t["offset"] + t["nbytes"]]
    return list(struct.unpack(f"<{t['nbytes'] // 8}d", data))

print("loss", tensor(answer["target"]["loss"]))
print("dloss/dw", tensor(answer["gradients"]["w"]))
