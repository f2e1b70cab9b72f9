#!/usr/bin/env python3
"""ctest packaging.man: the man pages (docs/man/*.scd) against the programs.

umdevd(8): the options `umdevd --help` prints are exactly those the OPTIONS
section defines, and every environment variable the help names is in
ENVIRONMENT.
umdevctl(8): the verbs `umdevctl --help` lists are exactly the subsections
of VERBS; the global options of its usage and option lines are exactly
those GLOBAL OPTIONS defines; and for each verb, the options of
`umdevctl VERB --help` (its usage and option lines, less the global ones)
are exactly those its subsection defines.
umdev(3): every header of include/umdev is described under HEADERS, and
nothing else is.
With --built DIR, the pages scdoc made in DIR must exist and name every
option too (so what is installed says what the source says).

The help text is parsed as it is printed, whatever it contains, so an
option added to a program or a page alone fails this test. The parser
itself is checked first: an option slipped into a help text and one
dropped from a page must each be reported.

Each --tool NAME=BIN (umdev-serve, umdev-probe, ...): the options of
`BIN --help` are exactly those the OPTIONS section of NAME.1 defines
(its subsections too: one per subcommand); a NAME.1 page no --tool
names is an error.

Usage: check_man.py --umdevd BIN --umdevctl BIN --man-dir DIR
                    --include-dir DIR [--built DIR] [--tool NAME=BIN]...
"""
import argparse
import os
import re
import subprocess
import sys

# An option token: -x or --long-name, standing alone (not inside a word
# such as "serial-2port" or "vfio-user").
OPT = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
# An option line of a help text is indented one to four columns (the
# continuation lines of a description are indented further).
OPT_LINE = re.compile(r"^ {1,4}-")
HELP_ONLY = {"--help", "-h"}  # how the help itself is asked for


def run_help(argv):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        sys.exit("FAIL: %s exited %d: %s" % (" ".join(argv), p.returncode,
                                              p.stderr))
    return p.stdout


def help_options(text):
    """Options of the usage lines and option lines of a help text. A
    usage continues on the lines that follow it and start, indented, with
    "[" or with another form of the command ("umdev..."); a description's
    continuation starts with a word, and is not read."""
    opts, usage = set(), False
    for line in text.splitlines():
        if line.startswith("usage:"):
            usage = True
        elif not (usage and re.match(r"^\s+(\[|umdev)", line)):
            usage = False
        if usage or OPT_LINE.match(line):
            opts |= set(OPT.findall(line))
    return opts


def help_verbs(text):
    return {m.group(1) for m in
            (re.match(r"^  ([a-z][a-z-]*)  ", l) for l in text.splitlines())
            if m}


def help_env(text):
    return set(re.findall(r"\bUMDEV_[A-Z_]+\b", text))


def scd_sections(text):
    """{section: {subsection or "": [lines]}} of an scdoc source."""
    out, sec, sub = {}, None, ""
    for line in text.splitlines():
        if line.startswith("# "):
            sec, sub = line[2:].strip(), ""
            out.setdefault(sec, {"": []})
        elif line.startswith("## ") and sec is not None:
            sub = line[3:].strip()
            out[sec].setdefault(sub, [])
        elif sec is not None:
            out[sec][sub].append(line)
    return out


def scd_defined(lines):
    """Options that the definition lines (a term in column 0: "*-x*, ...")
    define; the descriptions, indented by a tab, define nothing."""
    opts = set()
    for line in lines:
        if line.startswith("*-"):
            opts |= set(OPT.findall(line))
    return opts


def scd_env(lines):
    return {e for line in lines if line.startswith("*UMDEV_")
            for e in re.findall(r"\bUMDEV_[A-Z_]+\b", line)}


def compare(what, in_help, in_man, errors):
    for o in sorted(in_help - in_man):
        errors.append("%s: %s is in --help but not in the man page"
                      % (what, o))
    for o in sorted(in_man - in_help):
        errors.append("%s: %s is in the man page but not in --help"
                      % (what, o))


def check_umdevd(help_text, scd, errors):
    s = scd_sections(scd)
    for need in ("OPTIONS", "ENVIRONMENT"):
        if need not in s:
            errors.append("umdevd.8: no %s section" % need)
            return
    compare("umdevd", help_options(help_text) - HELP_ONLY,
            scd_defined(s["OPTIONS"][""]) - HELP_ONLY, errors)
    for e in sorted(help_env(help_text) - scd_env(s["ENVIRONMENT"][""])):
        errors.append("umdevd: %s is in --help but not under ENVIRONMENT"
                      % e)


def check_umdevctl(top, verbs_help, scd, errors):
    s = scd_sections(scd)
    for need in ("GLOBAL OPTIONS", "VERBS"):
        if need not in s:
            errors.append("umdevctl.8: no %s section" % need)
            return
    glob = help_options(top) - HELP_ONLY
    compare("umdevctl (global)", glob,
            scd_defined(s["GLOBAL OPTIONS"][""]) - HELP_ONLY, errors)
    man_verbs = set(s["VERBS"]) - {""}
    compare("umdevctl verbs", set(verbs_help), man_verbs, errors)
    for verb in sorted(set(verbs_help) & man_verbs):
        compare("umdevctl %s" % verb,
                help_options(verbs_help[verb]) - glob - HELP_ONLY,
                scd_defined(s["VERBS"][verb]) - glob - HELP_ONLY, errors)


def check_tool(name, help_text, scd, errors):
    """A program's page: its OPTIONS section (with any subsections, one
    per subcommand) against the program's --help."""
    s = scd_sections(scd)
    if "OPTIONS" not in s:
        errors.append("%s.1: no OPTIONS section" % name)
        return
    in_man = set().union(*map(scd_defined, s["OPTIONS"].values()))
    compare(name, help_options(help_text) - HELP_ONLY, in_man - HELP_ONLY,
            errors)


def check_umdev3(include_dir, scd, errors):
    s = scd_sections(scd)
    if "HEADERS" not in s:
        errors.append("umdev.3: no HEADERS section")
        return
    described = {m for line in s["HEADERS"][""] if line.startswith("*<")
                 for m in re.findall(r"<umdev/([\w.]+\.h)>", line)}
    present = {f for f in os.listdir(include_dir) if f.endswith(".h")}
    for h in sorted(present - described):
        errors.append("umdev.3: include/umdev/%s is not described under "
                      "HEADERS" % h)
    for h in sorted(described - present):
        errors.append("umdev.3: HEADERS describes <umdev/%s>, which does "
                      "not exist" % h)


def check_built(built, page, opts, errors):
    path = os.path.join(built, page)
    if not os.path.isfile(path):
        errors.append("%s: scdoc did not make it in %s" % (page, built))
        return
    # Font changes (\fB...\fR) and escaped hyphens aside, the text.
    roff = re.sub(r"\\f[BIRP]", "",
                  open(path, encoding="utf-8").read().replace("\\-", "-"))
    for o in sorted(opts):
        if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), roff):
            errors.append("%s (built): %s is missing" % (page, o))


def self_test(umdevd_help, umdevd_scd):
    """The checker must see an option present on one side only."""
    bogus = umdevd_help.replace("usage: umdevd [options]\n",
                                "usage: umdevd [options]\n"
                                "  --no-such-option  added to --help\n", 1)
    errs = []
    check_umdevd(bogus, umdevd_scd, errs)
    if not any("--no-such-option" in e for e in errs):
        sys.exit("FAIL: the checker missed an option added to --help only")
    dropped = re.sub(r"(?m)^\*--verbose\*\n", "", umdevd_scd, count=1)
    if dropped == umdevd_scd:
        sys.exit("FAIL: self-test: umdevd.8.scd defines no *--verbose*")
    errs = []
    check_umdevd(umdevd_help, dropped, errs)
    if not any("--verbose" in e for e in errs):
        sys.exit("FAIL: the checker missed an option missing from the page")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--umdevd", required=True)
    ap.add_argument("--umdevctl", required=True)
    ap.add_argument("--man-dir", required=True)
    ap.add_argument("--include-dir", required=True)
    ap.add_argument("--built")
    ap.add_argument("--tool", action="append", default=[],
                    metavar="NAME=BIN",
                    help="a program with a page NAME.1.scd")
    a = ap.parse_args()

    def read(name):
        return open(os.path.join(a.man_dir, name), encoding="utf-8").read()

    d_help = run_help([a.umdevd, "--help"])
    c_help = run_help([a.umdevctl, "--help"])
    verbs = sorted(help_verbs(c_help))
    if not verbs or not help_options(d_help):
        sys.exit("FAIL: found no verbs in `umdevctl --help` or no options "
                 "in `umdevd --help`: has their shape changed?")
    verbs_help = {v: run_help([a.umdevctl, v, "--help"]) for v in verbs}
    d_scd, c_scd = read("umdevd.8.scd"), read("umdevctl.8.scd")
    self_test(d_help, d_scd)

    errors = []
    check_umdevd(d_help, d_scd, errors)
    check_umdevctl(c_help, verbs_help, c_scd, errors)
    check_umdev3(a.include_dir, read("umdev.3.scd"), errors)
    tools = dict(t.split("=", 1) for t in a.tool)
    tools_help = {n: run_help([b, "--help"]) for n, b in tools.items()}
    for n in sorted(tools):
        check_tool(n, tools_help[n], read(n + ".1.scd"), errors)
    pages = set(os.listdir(a.man_dir))
    for page in sorted(p for p in pages if p.endswith(".1.scd")):
        if page[:-len(".1.scd")] not in tools:
            errors.append("%s: no --tool names its program" % page)
    if a.built:
        check_built(a.built, "umdevd.8", help_options(d_help), errors)
        check_built(a.built, "umdevctl.8",
                    set().union(help_options(c_help),
                                *map(help_options, verbs_help.values())),
                    errors)
        check_built(a.built, "umdev.3", set(), errors)
        for n in sorted(tools):
            check_built(a.built, n + ".1", help_options(tools_help[n]),
                        errors)
    for e in errors:
        print("FAIL: " + e)
    if errors:
        print("packaging.man: %d difference(s) between the man pages "
              "(docs/man/) and --help" % len(errors))
        return 1
    print("packaging.man: umdevd: %d options; umdevctl: %d verbs, %d "
          "options in all; umdev(3): %d headers; %s: pages and --help "
          "agree" % (len(help_options(d_help)), len(verbs),
                     len(set().union(*map(help_options,
                                          verbs_help.values()))),
                     len(os.listdir(a.include_dir)),
                     ", ".join("%s %d options" % (n, len(help_options(h)))
                               for n, h in sorted(tools_help.items()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
