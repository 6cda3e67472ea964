#!/usr/bin/env python3
"""Print src/'s module graph, its import cycles and its oversized files (docs/architecture.md).

    python3 docs/module_graph.py [--max-lines 700] [SRC]
    python3 docs/module_graph.py --markdown [SRC]   # the module map of docs/architecture.md
    python3 docs/module_graph.py --check [SRC]      # exit 1 on a cycle, an engine module importing
                                                    # above the engine, a module below main importing
                                                    # cli, a file over 700 lines, or a stale map

An edge A -> B means module A names module B (or an item B defines or re-exports) in code
outside its `#[cfg(test)]` modules: `crate::b::…` paths (in `use` trees or inline), `super::…`,
`self::…` and a parent's plain `child::…` paths; `main` (the binary) is read through
`hofbench::…`. Comments and string literals are ignored. `pub use` re-exports (glob ones
too) are followed to the module that defines the item. Inline `mod name { … }` blocks are
modules of their own; `#[cfg(test)] mod tests;` files are left out of the graph (not out of
the file sizes). Cycles are the strongly connected components of the
graph with more than one module. Standard library only.
"""

import re
import sys
from pathlib import Path


# The engine layer of DEVELOPERS.md and issue 14 (src/engine/, plus `error`, which it may
# import), which should import nothing above it.
ENGINE = {"error"}
ENGINE_TREES = {"engine"}


def strip_code(text):
    """Source text with comments and string/char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not text[i - 1].isalnum()):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:])):
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_modules(code):
    """Code without `#[cfg(test)] mod … { … }` blocks, and how many lines those held."""
    test_lines = 0
    while m := re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", code):
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        test_lines += code.count("\n", m.start(), j) + 1
        code = code[: m.start()] + "\n" * code.count("\n", m.start(), j) + code[j:]
    return code, test_lines


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (`self` and renames handled)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)  # a rename changes no module
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if not m:
        return [tree]
    prefix, inner = m.groups()
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    parts.append(cur)
    paths = []
    for p in filter(None, parts):
        for sub in expand_use(p):
            paths.append(prefix.rstrip(":") if sub == "self" else prefix + sub)
    return paths


def inline_modules(code):
    """(name, body) of each top-level `mod name { … }` block in code (tests already dropped)."""
    out = []
    for m in re.finditer(r"(?m)^(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{", code):
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        out.append((m.group(1), code[m.end() : j - 1]))
    return out


def module_name(path, src):
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts == ["lib"]:
        return "lib"
    return "/".join(parts)


def main():
    args = sys.argv[1:]
    max_lines = 700
    if "--max-lines" in args:
        k = args.index("--max-lines")
        max_lines = int(args[k + 1])
        del args[k : k + 2]
    markdown = "--markdown" in args
    if markdown:
        args.remove("--markdown")
    check = "--check" in args
    if check:
        args.remove("--check")
    src = Path(args[0] if args else Path(__file__).resolve().parent.parent / "src")

    files = {module_name(p, src): p for p in sorted(src.rglob("*.rs"))}
    stripped = {m: drop_test_modules(strip_code(p.read_text())) for m, p in files.items()}
    code = {m: c for m, (c, _) in stripped.items()}
    test_lines = {m: t for m, (_, t) in stripped.items()}
    lines = {m: p.read_text().count("\n") for m, p in files.items()}
    # Inline `mod name { … }` blocks are modules of their own (named as their files would be).
    for m in list(code):
        for name, body in inline_modules(code[m]):
            inner = name if m == "lib" else f"{m}/{name}"
            code[inner], test_lines[inner] = body, 0
            files[inner], lines[inner] = files[m], body.count("\n")
            code[m] = code[m].replace(body, "\n" * body.count("\n"), 1)
    # `#[cfg(test)] mod tests;` files are unit tests of their parent, not modules of the graph
    # (their size still counts below).
    test_files = {}
    for m in sorted(code):
        if m not in code:
            continue
        for name in re.findall(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+(\w+)\s*;", code[m]):
            child = name if m == "lib" else f"{m}/{name}"
            if child in code:
                test_files[child] = files.pop(child)
                test_lines[child] = lines[child]
                del code[child]
    modules = set(files)

    def parent(m):
        return "lib" if "/" not in m else m.rsplit("/", 1)[0]

    # `pub use` re-exports: (module, name) -> the path it stands for
    reexports = {}
    for m, c in code.items():
        for tree in re.findall(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", c):
            for p in expand_use(tree):
                reexports[(m, p.split("::")[-1])] = (m, p)

    def resolve(m, path, depth=0):
        """The module a path written in module m refers to (None: outside the crate)."""
        segs = [s for s in path.split("::") if s]
        if not segs:
            return None
        if segs[0] in ("crate", "hofbench"):
            cur, segs = "lib", segs[1:]
        elif segs[0] == "super":
            cur, segs = m, segs
            while segs and segs[0] == "super":
                cur, segs = parent(cur), segs[1:]
        elif segs[0] == "self":
            cur, segs = m, segs[1:]
        else:
            cur = m  # a child module named plainly, or a name re-exported in m
        while segs:
            child = segs[0] if cur == "lib" else cur + "/" + segs[0]
            if child in modules:
                cur, segs = child, segs[1:]
            elif (cur, segs[0]) in reexports and depth < 8:
                owner, target = reexports[(cur, segs[0])]
                return resolve(owner, "::".join([target] + segs[1:]), depth + 1)
            elif (cur, "*") in reexports and depth < 8:
                owner, target = reexports[(cur, "*")]
                return resolve(owner, "::".join([target[:-3]] + segs), depth + 1)
            else:
                break
        return cur

    edges = {m: set() for m in modules}
    for m, c in code.items():
        refs = []
        for tree in re.findall(r"\buse\s+([^;]+);", c):
            refs += expand_use(tree)
        refs += re.findall(r"(?<![\w:])(?:crate|hofbench|super|self)(?:::\w+)+", c)
        kids = {k.rsplit("/", 1)[-1] for k in modules if k != m and parent(k) == m}
        for kid in kids:
            refs += [kid + "::" + rest for rest in re.findall(rf"(?<![\w:]){kid}::(\w+)", c)]
        for r in refs:
            head = r.split("::")[0]
            if head not in ("crate", "hofbench", "super", "self") and head not in kids:
                continue
            t = resolve(m, r)
            if t and t != m and t != "lib":
                edges[m].add(t)

    # Tarjan's strongly connected components
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)

    if markdown:
        print_markdown(modules, files, edges, src)
        return
    if check:
        sys.exit(check_rules(modules, files, edges, sccs, lines, test_files, max_lines, src))
    print("# module graph (A -> what A imports from the crate)")
    for m in sorted(modules):
        print(f"{m} ({lines[m]} lines) -> {', '.join(sorted(edges[m])) or '-'}")
    cycles = sorted((c for c in sccs if len(c) > 1), key=len, reverse=True)
    print(f"\n# import cycles (strongly connected components): {len(cycles)}")
    for c in cycles:
        print("{" + ", ".join(c) + "}")
        for a in c:
            inside = sorted(edges[a] & set(c))
            print(f"    {a} -> {', '.join(inside)}")
    print("\n# modules below main that import cli (clap types)")
    print(", ".join(sorted(m for m in modules if "cli" in edges[m] and m != "main")) or "-")
    engine = {m for m in modules if m in ENGINE or m.split("/")[0] in ENGINE_TREES}
    print("\n# engine modules (DEVELOPERS.md) importing above the engine")
    for m in sorted(engine):
        above = sorted(t for t in edges[m] if t not in engine)
        if above:
            print(f"{m} -> {', '.join(above)}")
    files.update(test_files)
    big = sorted((m for m in files if lines[m] > max_lines), key=lambda m: -lines[m])
    print(f"\n# files over {max_lines} lines: {len(big)}")
    for m in big:
        print(f"{files[m].relative_to(src.parent)}: {lines[m]} ({test_lines[m]} of them unit tests)")


def module_doc(path):
    """The first sentence of a file's `//!` module doc, as the 'owns' column."""
    doc = []
    for line in path.read_text().splitlines():
        if line.startswith("//!"):
            doc.append(line[3:].strip())
        elif doc or line.strip():
            break
    text = " ".join(doc).strip()
    m = re.match(r"(.+?\.)(\s|$)", text)
    text = m.group(1) if m else text
    if len(text) > 320:
        text = text[:317].rsplit(" ", 1)[0] + " …"
    return text.replace("|", "\\|")


def print_markdown(modules, files, edges, src):
    """One table per layer: module, file, what it owns (its doc's first sentence), imports."""
    layers = [
        ("Engine (imports nothing above it)", lambda m: m.split("/")[0] == "engine"),
        ("Benchmark", lambda m: m.split("/")[0] not in ("engine", "main", "lib", "cli", "config")),
        ("Entry points", lambda m: m.split("/")[0] in ("main", "lib", "cli", "config")),
    ]
    for title, keep in layers:
        print(f"### {title}\n")
        print("| module | file | owns | imports |")
        print("| --- | --- | --- | --- |")
        for m in sorted(x for x in modules if keep(x)):
            imports = ", ".join(sorted(t for t in edges[m] if t != "error")) or "—"
            rel = files[m].relative_to(src.parent)
            print(f"| `{m}` | {rel} | {module_doc(files[m])} | {imports} |")
        print()


def check_rules(modules, files, edges, sccs, lines, test_files, max_lines, src):
    """The rules of docs/architecture.md, for tests/run.sh: 0 when all hold, else 1."""
    import contextlib
    import io

    problems = []
    for c in sccs:
        if len(c) > 1:
            problems.append("import cycle: {" + ", ".join(c) + "}")
    engine = {m for m in modules if m in ENGINE or m.split("/")[0] in ENGINE_TREES}
    for m in sorted(engine):
        for t in sorted(edges[m] - engine):
            problems.append(f"engine module {m} imports {t}, above the engine")
    for m in sorted(modules):
        if "cli" in edges[m] and m != "main":
            problems.append(f"{m} imports cli (only main may)")
    for m, p in {**files, **test_files}.items():
        if lines[m] > max_lines:
            problems.append(f"{p.relative_to(src.parent)}: {lines[m]} lines (over {max_lines})")
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        print_markdown(modules, files, edges, src)
    doc = (src.parent / "docs" / "architecture.md").read_text()
    if table.getvalue() not in doc:
        problems.append(
            "docs/architecture.md: the module map is stale; paste in the output of "
            "`python3 docs/module_graph.py --markdown src`"
        )
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    main()
