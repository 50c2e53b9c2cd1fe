"""layering: every #include "..." under src/ and include/ points down a layer.

Usage: layering.py ROOT   (ctest runs it as the test `layering`)

Layers of the tree, lowest first:
  0  src/common and the headers of include/vmail it implements
  1  src/proto and src/pg with their include/vmail headers; neither includes the other
  2  the program folders (src/vmaild, src/vmailctl, src/vmail-panel, ...); none includes another
A header of include/vmail belongs to the folder that holds the .c of the same
name; one without a .c (privdrop.h, build_config.h) belongs to common.

Inside src/vmaild every module (a .c and its .h) has a rank in VMAILD_MODULES;
a module may include only modules of a lower rank.  A file that is not in the
map is an error, so a new file has to be placed before it builds into a test.

An include is resolved like the compiler does: the including file's folder,
then include/, then the other source folders (reachable through a linked
library's include directories, which is what this check is for).

Before checking the tree, the script checks itself: it plants upward and
sideways includes in temporary copies of src/ and include/ and fails unless
each plant is reported.
"""

import os
import re
import shutil
import sys
import tempfile

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')

SHARED_LAYERS = {"common": 0, "proto": 1, "pg": 1}
PROGRAM_LAYER = 2

# src/vmaild, lowest first (see docs/architecture.md):
#   io        conn < server                       knows no lookup
#   lookup    lookup_kinds, cache < lookup_cache < metrics < lookup, metrics_http, dict_batch
#   services  dict_txn, dict_recount < svc_*
#   life      daemon < main
VMAILD_MODULES = {
    "conn": 0,
    "server": 1,
    "lookup_kinds": 2,
    "cache": 2,
    "lookup_cache": 3,
    "metrics": 4,
    "lookup": 5,
    "metrics_http": 5,
    "dict_batch": 5,
    "dict_txn": 6,
    "dict_recount": 6,
    "svc_dict": 7,
    "svc_policy": 7,
    "svc_socketmap": 7,
    "daemon": 8,
    "main": 9,
}

SOURCE_EXT = (".c", ".h", ".h.in")


def stem(path):
    name = os.path.basename(path)
    for ext in (".h.in", ".c", ".h"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def source_files(root):
    for top in ("src", "include"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(SOURCE_EXT):
                    yield os.path.join(dirpath, f)


def folder_of(root, path):
    """The group a file belongs to: common, proto, pg or a program folder name."""
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[0] == "src":
        return rel[1]
    # include/vmail/x.h: the folder implementing x
    s = stem(path)
    for group in ("common", "proto", "pg"):
        if os.path.exists(os.path.join(root, "src", group, s + ".c")):
            return group
    return "common"


def layer_of(group):
    return SHARED_LAYERS.get(group, PROGRAM_LAYER)


def resolve(root, path, name):
    candidates = [os.path.join(os.path.dirname(path), name),
                  os.path.join(root, "include", name),
                  os.path.join(root, "include", name + ".in")]
    src = os.path.join(root, "src")
    for d in sorted(os.listdir(src)):
        candidates.append(os.path.join(src, d, name))
    for c in candidates:
        if os.path.isfile(c):
            return os.path.normpath(c)
    return None


def check_vmaild(root, path, target, problems, where):
    src_mod, dst_mod = stem(path), stem(target)
    for m in (src_mod, dst_mod):
        if m not in VMAILD_MODULES:
            problems.append("%s: src/vmaild/%s is not placed in the module map "
                            "(tests/layering.py VMAILD_MODULES)" % (where, m))
            return
    if src_mod != dst_mod and VMAILD_MODULES[dst_mod] >= VMAILD_MODULES[src_mod]:
        problems.append("%s: vmaild module %s (rank %d) includes %s (rank %d): not below it"
                        % (where, src_mod, VMAILD_MODULES[src_mod], dst_mod,
                           VMAILD_MODULES[dst_mod]))


def check(root):
    """Every problem found under root, as 'file:line: why' strings."""
    problems = []
    for path in source_files(root):
        rel = os.path.relpath(path, root)
        group = folder_of(root, path)
        if group == "vmaild" and stem(path) not in VMAILD_MODULES:
            problems.append("%s: not placed in the vmaild module map "
                            "(tests/layering.py VMAILD_MODULES)" % rel)
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
        for n, line in enumerate(lines, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            where = "%s:%d" % (rel, n)
            target = resolve(root, path, m.group(1))
            if target is None:
                problems.append('%s: "%s" resolves to no file of the tree' % (where, m.group(1)))
                continue
            tgroup = folder_of(root, target)
            trel = os.path.relpath(target, root)
            if tgroup == group:
                if group == "vmaild":
                    check_vmaild(root, path, target, problems, where)
                continue
            if layer_of(tgroup) >= layer_of(group):
                kind = "up a layer" if layer_of(tgroup) > layer_of(group) else "sideways"
                problems.append('%s: includes "%s" (%s, %s, layer %d) from %s (layer %d): %s'
                                % (where, m.group(1), trel, tgroup, layer_of(tgroup), group,
                                   layer_of(group), kind))
    return problems


# Each plant: (file to change, line to add, a word the report must contain).
PLANTS = [
    ("src/vmaild/conn.c", '#include "lookup.h"', "src/vmaild/conn.c"),
    ("src/vmaild/lookup_kinds.c", '#include "lookup_cache.h"', "src/vmaild/lookup_kinds.c"),
    ("src/vmaild/svc_socketmap.c", '#include "daemon.h"', "src/vmaild/svc_socketmap.c"),
    ("src/proto/socketmap.c", '#include "conn.h"', "src/proto/socketmap.c"),
    ("src/proto/socketmap.c", '#include "../vmaild/lookup.h"', "src/proto/socketmap.c"),
    ("src/proto/netstring.c", '#include "vmail/pg.h"', "src/proto/netstring.c"),
    ("src/common/log.c", '#include "vmail/netstring.h"', "src/common/log.c"),
    ("src/vmail-panel/panel_form.c", '#include "daemon.h"', "src/vmail-panel/panel_form.c"),
    ("src/vmaild/stray.c", '#include "conn.h"', "src/vmaild/stray.c"),
]


def self_test(root):
    """True when every planted include is reported."""
    ok = True
    with tempfile.TemporaryDirectory(prefix="layering-") as tmp:
        for rel, line, expect in PLANTS:
            copy = os.path.join(tmp, "tree")
            if os.path.exists(copy):
                shutil.rmtree(copy)
            for top in ("src", "include"):
                shutil.copytree(os.path.join(root, top), os.path.join(copy, top))
            target = os.path.join(copy, rel)
            old = ""
            if os.path.exists(target):
                with open(target, encoding="utf-8") as f:
                    old = f.read()
            with open(target, "w", encoding="utf-8") as f:
                f.write(line + "\n" + old)
            found = [p for p in check(copy) if expect in p]
            if found:
                print("self-test: planted %s in %s: reported: %s" % (line, rel, found[0]))
            else:
                print("self-test: planted %s in %s: NOT reported" % (line, rel))
                ok = False
    return ok


def main():
    if len(sys.argv) != 2:
        print("usage: layering.py ROOT", file=sys.stderr)
        return 2
    root = os.path.abspath(sys.argv[1])
    if not self_test(root):
        print("layering: the check failed to catch a planted include", file=sys.stderr)
        return 1
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print("layering: %d include(s) break the layers" % len(problems), file=sys.stderr)
        return 1
    print("layering: every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
