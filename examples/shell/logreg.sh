#!/bin/sh
# gradd from the shell: logistic regression with curl and jq (graph registered once).
# Run: sh examples/shell/logreg.sh   (GRADD_URL overrides the server)
set -eu
URL=${GRADD_URL:-http://localhost:8080}
GRAPH='{"nodes": [
  {"name": "X", "op": "input"}, {"name": "y", "op": "input"},
  {"name": "w", "op": "variable"}, {"name": "b", "op": "variable"},
  {"name": "Xw", "op": "matmul", "inputs": ["X", "w"]},
  {"name": "z", "op": "add", "inputs": ["Xw", "b"]},
  {"name": "sp", "op": "softplus", "inputs": ["z"]},
  {"name": "yz", "op": "mul", "inputs": ["y", "z"]},
  {"name": "l", "op": "sub", "inputs": ["sp", "yz"]},
  {"name": "loss", "op": "mean", "inputs": ["l"]}]}'
DATA='{"X": [[0.5, 1.0], [1.5, -0.5], [-1.0, 0.5], [-0.5, -1.5],
             [2.0, 0.5], [-1.5, -0.5], [1.0, 1.5], [0.5, -1.0]],
       "y": [1, 1, 0, 0, 1, 0, 1, 0]}'

register() {
    jq -n --argjson g "$GRAPH" '{graph: $g}' | curl -s "$URL/v1/graphs" -d @- | jq -r .graph_id
}

# step W0 W1 B: the loss and the next W0 W1 B, one gradient step on; "retry"
# when the server no longer holds the graph (404 unknown_graph).
step() {
    jq -n --arg id "$id" --argjson d "$DATA" --argjson w "[$1, $2]" --argjson b "$3" \
        '{graph_id: $id, values: ($d + {w: $w, b: $b}), target: "loss"}' |
    curl -s "$URL/v1/grad" -d @- |
    jq -r --argjson w "[$1, $2]" --argjson b "$3" '
        if .error.code == "unknown_graph" then "retry"
        elif .gradients then "\(.target.loss) \($w[0] - 0.5 * .gradients.w[0])"
                          + " \($w[1] - 0.5 * .gradients.w[1]) \($b - 0.5 * .gradients.b)"
        else error("gradd answered \(.)") end'
}

id=$(register)
set -- 0 0 0                      # w0 w1 b
for i in $(seq 0 50); do
    out=$(step "$@")
    if [ "$out" = retry ]; then
        id=$(register)
        out=$(step "$@")
    fi
    set -- $out                   # loss w0 w1 b
    if [ $((i % 10)) -eq 0 ]; then
        printf 'step %d: loss %.6f\n' "$i" "$1"
    fi
    shift
done
printf 'w = [%.4f, %.4f], b = %.4f\n' "$@"
