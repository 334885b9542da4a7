"""The methods a parameter file may name, as entries of one registry: the built-ins (DC and its variants, DSA, DM,
the four coresets) and the plug-ins that join them, from a parameter file's `plugins:` section or from installed
packages (entry points of the group `dcpipe.methods`). An entry is a name, a kind, a target ("module:function")
and settings: config, plan and the rules read it without importing any method's code. Only `check` imports a
plug-in's module, to refuse a broken one before any work (docs/plugins.md)."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import inspect
import os
import pkgutil
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .condense_config import SUCCESSORS, VARIANTS
from .coreset_names import CORESETS
from .errors import ParamsError

GROUP = "dcpipe.methods"  # the entry-point group of installed methods
ARGUMENTS = ("data", "ipc", "seed", "device", "settings", "progress", "checkpoint")  # every method's keywords (dcpipe.plugin)
KINDS = ("synthetic", "coreset", "file")  # file: finished sets read from a path template (dcpipe.door)
# The built-ins behind the same door as a plug-in: one function per kind (dcpipe.builtins, dcpipe.builtin_coresets),
# the method's settings say which.
BUILTIN_TARGETS = {"synthetic": "dcpipe.builtins:condense", "coreset": "dcpipe.builtin_coresets:select"}
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # no '-': the study grammar (dcpipe.methods) owns names with one
FILE_FIELDS = ("{dataset}", "{ipc}")  # a file entry's template names its cell; "{set}" is optional


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str                      # synthetic | coreset | file (finished sets read from `template`)
    target: str | None = None      # "module:function" (pkgutil.resolve_name syntax); None for kind file
    path: str | None = None        # a folder put first on sys.path to import target (a local file)
    settings: dict = field(default_factory=dict, compare=False)  # passed to the function as `settings`
    origin: str = "built-in"       # built-in | plugins.<name> of a parameter file | entry point of a package
    template: str | None = None    # kind file: e.g. sets/mtt/{dataset}_ipc{ipc}.pt
    pixels: str = "normalised"     # kind file: how its pixels are stored (dcpipe.sets.PIXELS)

    @property
    def builtin(self) -> bool:
        return self.origin == "built-in"

    def source(self) -> str | None:
        """The file a plug-in's target resolves to, found without running it: a code dependency of its own jobs
        (relative to the working directory when inside it, as a rule's input and a DVC dep are). None for a
        built-in (its code is in codedeps) and for a file entry."""
        if self.builtin or not self.target:
            return None
        module = self.target.split(":")[0]
        if self.path:
            base = Path(self.path).joinpath(*module.split("."))
            found = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
        else:
            try:
                spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                spec = None
            found = Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None
        if found is None:
            return None
        found = found.resolve()
        return os.path.relpath(found) if found.is_relative_to(Path.cwd().resolve()) else str(found)

    def file_for(self, dataset: str, ipc: int, index: int) -> str:
        return self.template.format(dataset=dataset, ipc=ipc, set=index)


def builtins() -> dict[str, Entry]:
    synthetic = {**VARIANTS, **SUCCESSORS}
    out = {n: Entry(n, "synthetic", BUILTIN_TARGETS["synthetic"], settings=dict(s)) for n, s in synthetic.items()}
    out.update({n: Entry(n, "coreset", BUILTIN_TARGETS["coreset"], settings={"selector": n}) for n in CORESETS})
    return out


BUILTINS = builtins()
_DECLARED: dict[str, Entry] = {}  # the plug-ins of the parameter file loaded last (config.load declares them)


@functools.lru_cache(maxsize=1)
def installed() -> dict[str, Entry]:
    """Methods of installed packages: entry points `Name = module:function` of the group dcpipe.methods. The
    function says its kind (dcpipe.plugin.synthetic / .coreset set `dcpipe_kind`), read when it is checked."""
    eps = importlib.metadata.entry_points(group=GROUP)
    return {ep.name: Entry(ep.name, "", ep.value, origin=f"entry point {ep.name} = {ep.value} of the package "
                                                        f"{ep.dist.name if ep.dist else '?'}") for ep in eps}


def declare(plugins: dict | None, base: Path, where: str) -> list[str]:
    """Make a parameter file's `plugins:` (schema-valid) the declared plug-ins, checked (`check`); the problems, one
    line each. Relative paths and templates are the parameter file's folder's (`base`)."""
    _DECLARED.clear()
    problems = []
    for name, spec in (plugins or {}).items():
        def near(p):
            return p if Path(p).expanduser().is_absolute() else os.path.relpath((base / p).resolve())

        entry = Entry(name, spec["kind"], spec.get("target"), near(spec["path"]) if spec.get("path") else None,
                      dict(spec.get("settings") or {}), f"plugins.{name}",
                      near(spec["template"]) if spec.get("template") else None, spec.get("pixels", "normalised"))
        found = check(entry)
        problems += [f"  plugins.{name}: {p}" for p in found]
        if not found:
            _DECLARED[name] = entry
    return problems


def entry(name: str) -> Entry | None:
    """The registry's entry of a name: a plug-in of the loaded parameter file, an installed method, or a built-in."""
    if name in _DECLARED:
        return _DECLARED[name]
    if name in BUILTINS:
        return BUILTINS[name]
    found = installed().get(name)
    if found and not found.kind:
        problems = check(found)
        if problems:
            raise_problems(name, problems)
        found = _DECLARED.setdefault(name, Entry(name, resolve(found).dcpipe_kind, found.target, origin=found.origin))
    return found


def plugins() -> dict[str, Entry]:
    """The plug-ins a name may refer to now: the declared ones (the loaded parameter file's), then installed ones."""
    return {**{n: e for n, e in installed().items() if n not in BUILTINS}, **_DECLARED}


def raise_problems(name: str, problems: list[str]):
    raise ParamsError(f"method {name}: " + "; ".join(problems))


def resolve(e: Entry):
    """The function of an entry's target, imported (with its path first on sys.path)."""
    folder = str(Path(e.path).resolve()) if e.path else None  # absolute: a later chdir must not move it
    if folder and folder not in sys.path:
        sys.path.insert(0, folder)
    return pkgutil.resolve_name(e.target)


def check(e: Entry) -> list[str]:
    """Why an entry cannot run, found before any work (each a line naming the fix), or []: its name, kind, that its
    target imports and is a function taking the method keywords, its settings plain YAML values, and (kind file)
    its template."""
    if not NAME.fullmatch(e.name):
        return [f"{e.name!r} is not a method name: letters, digits and '_', starting with a letter"]
    if e.name in BUILTINS and not e.builtin:
        return [f"{e.name} is a built-in method's name; give the plug-in another name"]
    if e.origin.startswith("plugins.") and e.name in installed():
        return [f"{e.name} is also an installed method ({installed()[e.name].origin}); rename the plugins entry or "
                f"uninstall the package"]
    if e.kind and e.kind not in KINDS:
        return [f"kind {e.kind!r} is unknown; valid: {', '.join(KINDS)}"]
    if e.kind == "file":
        if not e.template or not all(f in e.template for f in FILE_FIELDS):
            return [f"template {e.template!r} must name its cell with {' and '.join(FILE_FIELDS)} (and may use {{set}})"]
        return []
    bad = not_plain(e.settings)
    if bad:
        return [f"settings{bad} is not a plain YAML value (strings, numbers, booleans, null, lists and mappings)"]
    if not e.target:
        return [f"a {e.kind} method needs a target, 'module:function'"]
    try:
        fn = resolve(e)
    except (ImportError, AttributeError, ValueError) as x:
        where = f" (path {e.path})" if e.path else ""
        return [f"target {e.target} cannot be resolved{where}: {type(x).__name__}: {x}; fix the target or path"]
    except Exception as x:  # the plug-in's own module failed while importing: its error, in one line
        return [f"importing {e.target} failed: {type(x).__name__}: {x}"]
    if not callable(fn):
        return [f"target {e.target} is a {type(fn).__name__}, not a function"]
    kind = e.kind or getattr(fn, "dcpipe_kind", None)
    if kind not in ("synthetic", "coreset"):
        return [f"{e.target} does not say its kind: decorate it with dcpipe.plugin.synthetic or dcpipe.plugin.coreset"]
    try:
        inspect.signature(fn).bind(**{a: None for a in ARGUMENTS})
    except (TypeError, ValueError):
        return [f"{e.target}{_signature(fn)} does not take a {kind} method's keywords ({', '.join(ARGUMENTS)}); "
                f"see docs/plugins.md"]
    return []


def _signature(fn) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def not_plain(value, at: str = "") -> str | None:
    """Where a value is not plain YAML data (str, int, float, bool, None, lists and string-keyed mappings)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return None
    if isinstance(value, list):
        return next((b for i, v in enumerate(value) if (b := not_plain(v, f"{at}[{i}]")) is not None), None)
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{at} key {k!r}"
            if (b := not_plain(v, f"{at}.{k}")) is not None:
                return b
        return None
    return f"{at} ({type(value).__name__})"
