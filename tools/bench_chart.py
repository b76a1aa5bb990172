#!/usr/bin/env python3
"""bench_chart.py: draws build/bench.json (from `tessera bench --json`) as a PNG with gnuplot.

One group of two bars per benchmark that has a peer: our median time and the
peer's, in ms on a log scale (so 0.01 ms and 500 ms fit on one chart), with
the ratio peer/ours written above each group (above 1: we are faster).
Benchmarks without a peer are left out (listed on stderr).

Usage: bench_chart.py BENCH.json OUT.png
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench_chart.py BENCH.json OUT.png")
    src, out = sys.argv[1], sys.argv[2]
    if not shutil.which("gnuplot"):
        sys.exit("bench_chart: gnuplot is not installed (tools/setup.sh installs gnuplot-nox)")
    with open(src) as f:
        entries = json.load(f)
    rows, skipped = [], []
    for e in entries:
        if e.get("peer_ms", 0) > 0 and e.get("ours_ms", 0) > 0:
            rows.append(e)
        else:
            skipped.append(f'{e.get("name")} ({e.get("backend")})')
    if skipped:
        print(f"bench_chart: no peer, not drawn: {', '.join(skipped)}", file=sys.stderr)
    if not rows:
        sys.exit(f"bench_chart: {src} has no benchmark with a peer")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "bench.dat")
        with open(data, "w") as f:
            for i, e in enumerate(rows):
                label = f'{e["name"]} {e["backend"]}\\n{e["shape"]}\\nvs {e["peer"]}'.replace('"', "'")
                ratio = e.get("ratio") or e["peer_ms"] / e["ours_ms"]
                f.write(f'{i} "{label}" {e["ours_ms"]:.6g} {e["peer_ms"]:.6g} {ratio:.3g}\n')
        width = max(900, 110 * len(rows) + 200)
        script = f"""
set terminal pngcairo size {width},620 noenhanced font ",9"
set output "{out}"
set title "Tessera against its peers (median ms, log scale; the number is peer/ours: above 1 we are faster)"
set logscale y
set ylabel "ms"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -35 left
set grid ytics
set key top left
set bmargin 9
set offsets 0, 0, graph 0.08, 0
plot "{data}" using 3:xtic(2) title "Tessera" lc rgb "#2f6db5", \\
     "" using 4 title "peer" lc rgb "#d9822b", \\
     "" using 1:(($3 > $4 ? $3 : $4) * 1.25):(sprintf("%.3gx", $5)) with labels notitle
"""
        if not shutil.which("gnuplot"):
            sys.exit(1)
        try:
            gp = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        except OSError as err:
            sys.exit(f"bench_chart: cannot run gnuplot: {err}")
        if gp.returncode != 0:
            sys.exit(f"bench_chart: gnuplot failed:\n{gp.stderr}")
    print(f"bench_chart: wrote {out} ({len(rows)} benchmarks)")


if __name__ == "__main__":
    main()
