"""README.md and docs/ say only what is true of the repository (SPEC §15: the README is the front door).

Over README.md and docs/*.md, with fenced code blocks left out (a paragraph is read as one line, so a
name wrapped onto the next line still counts as beside the path before it):

- **Links.** Every relative Markdown link `[text](path)`, `[text](path#anchor)`, `[text](#anchor)` resolves:
  the file exists, relative to the linking file, and the anchor is a heading of the target under GitHub's slug
  rule (the heading's text as rendered, lowercased; everything but letters, digits, spaces, '-' and '_'
  removed; each space a '-'; a repeated slug gets -1, -2, ...). http(s) and mailto links are not checked.
- **Citations in the code.** Every `docs/<page>.md#anchor` or `README.md#anchor` a source file names (.py, .js,
  .html, .css, .toml, .conf, Makefile, Procfile) resolves the same way.
- **Paths.** A backticked token made of path characters only (letters, digits, `_ . - / *`) is a repository
  path when its first component is a top-level directory that git tracks (`shared/store/writes.py`,
  `tests/faults/`; not `var/vesper.db`, which .gitignore names) or it is a bare `name.py`: it exists (a glob
  matches something; a bare `name.py` is some module of that name).
- **Names.** A name is *bound* in a Python file when the file defines it (def, class, assignment, annotated
  assignment, for/with target) or imports it; a class's members are what its body binds, what its methods bind
  on `self`, and its repository base classes' members. A backticked name is checked when it is written:
  1. beside a backticked `.py` path, with only spaces between (`shared/exposure.py` `exposure_error`), with
     the names that follow that one separated only by ", " or "/" (`vesper_web/hub.py` `doorbell`, `_sync`), or
     in a parenthesis right after the path that holds nothing but backticked names separated by commas or "and"
     (`vesper_ingest/liveness.py` (`sweep_cutoff`, `announces_online`)): bound in that file (for a bare `name.py`,
     in one of that name); `Class.member` there is a class of that file with that member; a call
     `make_client(manual_ack=True)` is checked as `make_client`;
  2. as `Class.member` anywhere, the first part CamelCase (`Ingest.process`): a class of that name in the
     repository has that member;
  3. as a dotted name whose first part is a top-level package (`vesper_web.bridge.start_for_app`,
     `bench.api_latency`): the longest module prefix exists, and what follows it is one name bound at that
     module's top level, or the whole is a logger name given to `logging.getLogger`;
  4. as `module.name` whose first part is the name of a module or package of the repository and not a section
     of the configuration (`commands.carry_out`, `store.read`): bound at the top level of a module of that
     name (of a package: its `__init__.py`);
  5. after `python -m`, in backticks or a code block: a module of the repository (or a package with
     `__main__.py`).
  Not checked: a lone name with no path beside it (`create_app`), configuration keys and counter names
  (`web.bind`, `events.republished`: their first part is a configuration section), tokens ending in a file
  extension (`config.toml`, `session.key`), and anything with a placeholder (`bench.<part>`).
- **Size.** README.md is at most 25,000 bytes.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_BYTES = 25_000

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
TICK = re.compile(r"`([^`]+)`")
PATH_TOKEN = re.compile(r"[\w.*/-]+")
EXTENSIONS = {"py", "toml", "conf", "key", "js", "css", "md", "json", "db", "acl", "lock", "txt", "html", "csv"}
NAME = rf"(?![\w.]+\.(?:{'|'.join(EXTENSIONS)})\b)[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?"
CALLABLE = re.compile(rf"({NAME})(?:\(.*\))?")
NAMED = rf"`{NAME}(?:\([^`]*\))?`"
BESIDE = re.compile(rf"`([\w./-]+\.py)`(?: +({NAMED}(?:(?:, |/){NAMED})*)| +\(({NAMED}(?:(?:,? and |, ){NAMED})*)\))")
CLASS_MEMBER = re.compile(r"`([A-Z][A-Za-z0-9]*)\.([A-Za-z_]\w*)`")
DOTTED = re.compile(r"`([a-z_]\w*(?:\.[A-Za-z_]\w*)+)`")
RUN_MODULE = re.compile(r"python -m ([\w.]+)(?=[\s`'\")]|$)", re.M)
CITATION = re.compile(r"(?<![\w/.])(docs/[\w-]+\.md|README\.md)(?:#([\w-]+))?")
CITING_SUFFIXES = {".py", ".js", ".html", ".css", ".toml", ".conf"}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _prose(path: Path) -> str:
    """The page without its fenced code blocks, each paragraph on one line."""
    text = FENCE.sub("", path.read_text())
    return "\n".join(" ".join(block.split("\n")) for block in text.split("\n\n"))


# --- anchors and links ------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's Markdown: links and code rendered as their text, then the slug rule."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>|[`*]", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return frozenset(found)


def _resolve(base: Path, target: str) -> str | None:
    """What is wrong with a link or citation, or None."""
    file_part, _, anchor = target.partition("#")
    path = (base / file_part).resolve() if file_part else None
    if path is not None and not path.exists():
        return f"{file_part} does not exist"
    if anchor and path is not None and path.is_dir():
        return f"{file_part} is a directory, it has no #{anchor}"
    if anchor and anchor not in anchors(path or base):
        return f"no heading with the anchor #{anchor} in {_rel(path or base)}"
    return None


def _links(page: Path) -> list[str]:
    text = re.sub(r"`[^`]*`", "code", _prose(page))
    return [t for t in LINK.findall(text) if not re.match(r"(https?|mailto):", t)]


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in _links(page):
        base = page if target.startswith("#") else page.parent
        problem = _resolve(base, target)
        if problem:
            broken.append(f"({target}): {problem}")
    assert broken == []


def _citing_files() -> list[Path]:
    files = [ROOT / name for name in ("Makefile", "Procfile")]
    for directory in [ROOT, *_tracked_dirs()]:
        pattern = "*" if directory == ROOT else "**/*"
        files += [p for p in directory.glob(pattern) if p.suffix in CITING_SUFFIXES and p.is_file()]
    return sorted(p for p in set(files) if p.exists() and p != Path(__file__).resolve())


def test_every_citation_of_the_docs_in_the_code_resolves() -> None:
    """`docs/events.md#liveness` in a docstring or comment names a heading that exists."""
    broken = []
    for path in _citing_files():
        for file_part, anchor in CITATION.findall(path.read_text(errors="replace")):
            target = f"{file_part}#{anchor}" if anchor else file_part
            problem = _resolve(ROOT, target)
            if problem:
                broken.append(f"{_rel(path)}: {target}: {problem}")
    assert broken == []


def test_slug_rule() -> None:
    assert slug("Single ingest, or a leader and standbys") == "single-ingest-or-a-leader-and-standbys"
    assert slug("The broker: the one part whose loss still stops the flow") == (
        "the-broker-the-one-part-whose-loss-still-stops-the-flow"
    )
    assert slug("[architecture.md](architecture.md)") == "architecturemd"
    assert slug("`max_batch` and Fan-out") == "max_batch-and-fan-out"


# --- paths ------------------------------------------------------------------------------------------------------


@cache
def _tracked_dirs() -> tuple[Path, ...]:
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()]
    ignored = [p for p in ignored if p and not p.startswith("#")]
    return tuple(
        p
        for p in sorted(ROOT.iterdir())
        if p.is_dir() and not p.name.startswith(".") and not any(fnmatch.fnmatch(p.name, i) for i in ignored)
    )


@cache
def python_files() -> tuple[Path, ...]:
    files = list(ROOT.glob("*.py"))
    for directory in _tracked_dirs():
        files += directory.rglob("*.py")
    return tuple(sorted(files))


def _named_paths(page: Path) -> list[str]:
    roots = {p.name for p in _tracked_dirs()}
    found = []
    for token in TICK.findall(_prose(page)):
        if not PATH_TOKEN.fullmatch(token):
            continue
        if token.split("/")[0] in roots and "/" in token or "/" not in token and token.endswith(".py"):
            found.append(token)
    return found


def _path_exists(token: str) -> bool:
    if "/" not in token:
        return any(p.name == token for p in python_files())
    if "*" in token:
        return any(ROOT.glob(token))
    return (ROOT / token).exists()


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_named_path_exists(page: Path) -> None:
    assert [t for t in _named_paths(page) if not _path_exists(t)] == []


# --- names ------------------------------------------------------------------------------------------------------


def _targets(node: ast.AST) -> list[str]:
    """The names a binding statement binds (self.x included, as 'self.x')."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    targets = {
        ast.Assign: lambda n: n.targets,
        ast.AnnAssign: lambda n: [n.target],
        ast.AugAssign: lambda n: [n.target],
        ast.For: lambda n: [n.target],
        ast.withitem: lambda n: [n.optional_vars] if n.optional_vars else [],
    }.get(type(node))
    names = []
    for target in targets(node) if targets else []:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.append(sub.id)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self":
                names.append(f"self.{sub.attr}")
    return names


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@cache
def bound_anywhere(path: Path) -> frozenset[str]:
    """Every name the file binds, at any depth; `self.x` counts as `x`."""
    return frozenset(name.removeprefix("self.") for node in ast.walk(_tree(path)) for name in _targets(node))


@cache
def bound_at_top(path: Path) -> frozenset[str]:
    names = {name for node in _tree(path).body for name in _targets(node)}
    for node in _tree(path).body:  # names bound under a top-level if/try (an optional import, a fallback)
        if isinstance(node, ast.If | ast.Try):
            names |= {name for sub in ast.walk(node) for name in _targets(sub) if not name.startswith("self.")}
    return frozenset(names)


@cache
def classes() -> dict[str, list[tuple[ast.ClassDef, Path]]]:
    found: dict[str, list[tuple[ast.ClassDef, Path]]] = {}
    for path in python_files():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append((node, path))
    return found


def _members(cls: ast.ClassDef, seen: frozenset[str] = frozenset()) -> set[str]:
    members = {name for node in cls.body for name in _targets(node)}
    members |= {name[5:] for node in ast.walk(cls) for name in _targets(node) if name.startswith("self.")}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id not in seen:
            for parent, _ in classes().get(base.id, []):
                members |= _members(parent, seen | {cls.name})
    return members


def has_member(class_name: str, member: str, path: Path | None = None) -> bool:
    return any(member in _members(cls) for cls, where in classes().get(class_name, []) if path is None or where == path)


def _bound_in(path_token: str, name: str) -> bool:
    files = [ROOT / path_token] if "/" in path_token else [p for p in python_files() if p.name == path_token]
    first, _, member = name.partition(".")
    if member:
        return any(has_member(first, member, path) for path in files)
    return any(name in bound_anywhere(path) for path in files)


def _beside_paths(text: str) -> list[tuple[str, str]]:
    pairs = []
    for path_token, run, listed in BESIDE.findall(text):
        for name in TICK.findall(run or listed):
            pairs.append((path_token, CALLABLE.fullmatch(name).group(1)))
    return pairs


@cache
def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module and package of the repository."""
    found = {}
    for path in python_files():
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _config_sections() -> set[str]:
    tree = _tree(ROOT / "shared" / "config.py")
    config = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
    return {n.target.id for n in config.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


@cache
def logger_names() -> frozenset[str]:
    found = set()
    for path in python_files():
        found |= set(re.findall(r"""getLogger\(\s*["']([\w.]+)["']""", path.read_text()))
    return frozenset(found)


def _dotted_in_package(dotted: str) -> bool:
    """Rule 3: a module, or one name bound at its top level, or a logger name."""
    if dotted in logger_names():
        return True
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = modules().get(".".join(parts[:cut]))
        if module is not None:
            rest = parts[cut:]
            return not rest or len(rest) == 1 and rest[0] in bound_at_top(module)
    return False


def _module_name(dotted: str) -> bool | None:
    """Rule 4: `module.name`; None when the first part is no module of the repository (or a config section)."""
    first, _, rest = dotted.partition(".")
    if "." in rest or first in _config_sections():
        return None
    candidates = [path for name, path in modules().items() if name.rsplit(".", 1)[-1] == first]
    if not candidates:
        return None
    return any(rest in bound_at_top(path) for path in candidates)


def _check_dotted(token: str) -> bool | None:
    if token.rsplit(".", 1)[-1] in EXTENSIONS:
        return None
    if token.split(".")[0] in {p.name for p in _tracked_dirs()}:
        return _dotted_in_package(token)
    return _module_name(token)


def _runnable(module: str) -> bool:
    """`python -m` runs a module, or a directory (a package or not) with a `__main__.py`."""
    path = modules().get(module)
    return path is not None and path.name != "__init__.py" or (ROOT / module.replace(".", "/") / "__main__.py").exists()


def name_problems(page: Path) -> list[str]:
    text = _prose(page)
    problems = [f"{p} `{n}`" for p, n in _beside_paths(text) if not _bound_in(p, n)]
    problems += [f"`{c}.{m}`" for c, m in CLASS_MEMBER.findall(text) if not has_member(c, m)]
    problems += [f"`{d}`" for d in DOTTED.findall(text) if _check_dotted(d) is False]
    runs = RUN_MODULE.findall(page.read_text())
    problems += [f"python -m {m}" for m in runs if not _runnable(m)]
    return problems


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_named_module_and_function_exists(page: Path) -> None:
    assert name_problems(page) == []


def test_the_name_rules_catch_what_they_should(tmp_path: Path) -> None:
    """Each rule, on a page that names the stale and the true: the stale are found, the true are not."""
    page = tmp_path / "page.md"
    page.write_text(
        "`vesper_ingest/sweep.py` `overdue` and `vesper_ingest/sweep.py` `no_such_function`;\n"
        "`vesper_web/hub.py` `doorbell`, `_gone`/`resync`, `vesper_web/hub.py` (`Hub.doorbell` and `Hub.gone`);\n"
        "`vesper_ingest/liveness.py` (`sweep_cutoff`, `nowhere`), `Ingest.process`, `Ingest._declare_offline`,\n"
        "`commands.carry_out`, `commands.nothing`, `vesper_web.audit`, `vesper_web.bridge.no_start`,\n"
        "`web.bind`, `events.republished`, `config.toml`, `python -m vesper_ingest`, `python -m bench.nothing`.\n"
    )
    assert name_problems(page) == [
        "vesper_ingest/sweep.py `no_such_function`",
        "vesper_web/hub.py `_gone`",
        "vesper_web/hub.py `Hub.gone`",
        "vesper_ingest/liveness.py `nowhere`",
        "`Hub.gone`",
        "`Ingest._declare_offline`",
        "`commands.nothing`",
        "`vesper_web.bridge.no_start`",
        "python -m bench.nothing",
    ]


# --- size -------------------------------------------------------------------------------------------------------


def test_the_readme_is_a_front_door() -> None:
    """At most 25,000 bytes: what it is, the two commands, using, configuring and running it; the rest in docs/."""
    assert len(README.read_bytes()) <= MAX_README_BYTES
