"""Compares two folders written by bench/before_after.sh: every file byte for byte, except
manifest.json (compared as JSON without timings and absolute paths), report.html (may embed
the run date) and the logs of commands whose exit code is all that must match."""
import json, os, sys

VOLATILE = {"timing", "timings", "started", "finished", "seconds", "score_seconds", "tokens_per_second",
            "items_per_second", "created"}

def clean(v, root):
    if isinstance(v, dict):
        return {k: clean(x, root) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [clean(x, root) for x in v]
    if isinstance(v, str):
        return v.replace(root, "OUT")
    return v

def files(root):
    for d, _, names in os.walk(root):
        for n in names:
            yield os.path.relpath(os.path.join(d, n), root)

a, b = sys.argv[1], sys.argv[2]
fa, fb = set(files(a)), set(files(b))
bad = 0
for p in sorted(fa ^ fb):
    print(f"only in {'A' if p in fa else 'B'}: {p}"); bad += 1
for p in sorted(fa & fb):
    if p.endswith(".lock") or p.endswith(".stderr") or p.endswith(".png") or p.endswith(".svg"):
        continue
    xa, xb = open(os.path.join(a, p), "rb").read(), open(os.path.join(b, p), "rb").read()
    if p.endswith(".json") and "manifest" in p:
        xa = json.dumps(clean(json.loads(xa), a), sort_keys=True)
        xb = json.dumps(clean(json.loads(xb), b), sort_keys=True)
    elif p.endswith((".html", ".md", ".stdout")):
        xa, xb = xa.replace(a.encode(), b"OUT"), xb.replace(b.encode(), b"OUT")
    if xa != xb:
        print(f"differs: {p}"); bad += 1
print(f"{len(fa & fb)} files in both, {bad} differences")
sys.exit(1 if bad else 0)
