# Sourced by the load benchmarks. On a shared VM the hypervisor can take a large share of the
# cores for minutes ("steal" in /proc/stat); figures measured then are not comparable.
#   mark=$(steal_mark); ...; steal_percent "$mark"   -> percent of CPU time stolen since the mark
steal_mark() { grep '^cpu ' /proc/stat; }
steal_percent() {
  awk -v a="$1" '/^cpu / { split(a, p, " "); t = 0; for (i = 2; i <= 9; i++) t += $i - p[i]
                           if (t > 0) printf "%.0f", 100 * ($9 - p[9]) / t; else print 0 }' /proc/stat
}
