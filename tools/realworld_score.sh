#!/usr/bin/env bash
# Scores a classifier on a set made by tools/realworld.sh: one markdown row per
# category (right, refused, accuracy; for reject, accuracy is the share refused)
# and "all digits" over the single-digit categories clean..photo.
# usage: tools/realworld_score.sh [--errors] MODEL.mlp DIR
#   --errors   also list each category's worst misreads (most confident first)
#   --check    exit 1 if a category is below its bar: clean 98%, numbers and
#              reject 90%, every other category 95%
#   CLASSIFY=path picks the classifier (default build/classify); a file it
#   refuses has no line on its stdout. numbers uses classify --number.
set -euo pipefail
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
errors=0 check=0
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h) usage; exit 0 ;;
        --errors) errors=1; shift ;;
        --check) check=1; shift ;;
        -*) echo "realworld_score: unknown option $1" >&2; usage >&2; exit 1 ;;
        *) break ;;
    esac
done
[ $# -eq 2 ] || { usage >&2; exit 1; }
model=$1 dir=${2%/}
classify=${CLASSIFY:-build/classify}
[ -r "$model" ] || { echo "realworld_score: cannot read model $model" >&2; exit 1; }
[ -r "$dir/manifest.csv" ] || { echo "realworld_score: no $dir/manifest.csv (make it with tools/realworld.sh)" >&2; exit 1; }
command -v "$classify" >/dev/null || { echo "realworld_score: no classifier $classify (make build/classify)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs the classifier over every file of the list, many per call. Status 1
# (some file refused) is expected; anything else means the run itself failed.
run_classifier() {
    local list=$1 out=$2; shift 2
    local status=0
    [ -s "$list" ] || { : >"$out"; return 0; }
    xargs -d '\n' -n 256 "$classify" "$@" "$model" <"$list" >"$out" 2>>"$tmp/stderr" || status=$?
    if [ $status -ne 0 ] && [ $status -ne 123 ]; then
        echo "realworld_score: $classify $* failed (status $status):" >&2
        tail -n 5 "$tmp/stderr" >&2
        exit 1
    fi
}

awk -F, -v dir="$dir" 'NR > 1 { print dir "/" $1 > ($2 == "numbers" ? "/dev/stderr" : "/dev/stdout") }' \
    "$dir/manifest.csv" >"$tmp/single.list" 2>"$tmp/numbers.list"
run_classifier "$tmp/single.list" "$tmp/single.json" --json
run_classifier "$tmp/numbers.list" "$tmp/numbers.json" --number --json

# Joins the manifest with the answers: right, refused, and the misreads as
# "category-order <tab> confidence <tab> file <tab> want <tab> got".
awk -v dir="$dir" -v errors_file="$tmp/errors.tsv" '
    function field(line, name, pattern,    s) {
        if (!match(line, "\"" name "\":" pattern)) return ""
        s = substr(line, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
        gsub(/"/, "", s)
        return s
    }
    FNR == 1 { part = FILENAME == ARGV[1] ? 1 : FILENAME == ARGV[2] ? 2 : 3 }
    part == 1 && FNR > 1 { n = split($0, f, ","); want[dir "/" f[1]] = f[3]; cat[dir "/" f[1]] = f[2]; files[++n_files] = dir "/" f[1]; next }
    part == 2 { file = field($0, "file", "\"[^\"]*\""); got[file] = field($0, "digit", "[0-9]+"); conf[file] = field($0, "confidence", "[0-9.eE+-]+"); next }
    part == 3 {
        file = field($0, "file", "\"[^\"]*\""); got[file] = field($0, "number", "\"[0-9]*\"")
        # the weakest digit says how sure the whole number is
        c = 1; line = $0
        while (match(line, /"confidence":[0-9.eE+-]+/)) {
            v = substr(line, RSTART + 13, RLENGTH - 13) + 0; if (v < c) c = v
            line = substr(line, RSTART + RLENGTH)
        }
        conf[file] = c; next
    }
    END {
        split("clean jpeg blur lowcontrast lighting noise photo numbers reject", order, " ")
        for (i = 1; i <= 9; i++) rank[order[i]] = i
        for (i = 1; i <= n_files; i++) {
            file = files[i]; c = cat[file]; pictures[c]++
            if (!(file in got)) { refused[c]++; if (c != "reject") printf "%d\t%s\t%s\t%s\t%s\n", rank[c], -1, file, want[file], "refused" > errors_file; continue }
            if (got[file] == want[file]) right[c]++
            else printf "%d\t%s\t%s\t%s\t%s\n", rank[c], conf[file], file, want[file], got[file] > errors_file
        }
        print "| category | pictures | right | refused | accuracy |"
        print "|---|---:|---:|---:|---:|"
        for (i = 1; i <= 9; i++) {
            c = order[i]
            if (!pictures[c]) continue
            ok = c == "reject" ? refused[c] : right[c]
            printf "| %s | %d | %d | %d | %.1f%% |\n", c, pictures[c], right[c], refused[c], 100 * ok / pictures[c]
            if (i <= 7) { all_p += pictures[c]; all_r += right[c]; all_f += refused[c] }
        }
        if (all_p) printf "| all digits | %d | %d | %d | %.1f%% |\n", all_p, all_r, all_f, 100 * all_r / all_p
    }' "$dir/manifest.csv" "$tmp/single.json" "$tmp/numbers.json" | tee "$tmp/table.md"

if [ $errors = 1 ] && [ -s "$tmp/errors.tsv" ]; then
    echo
    echo "Worst misreads (most confident first, at most 10 per category; refusals last):"
    echo
    echo "| category | file | want | got | confidence |"
    echo "|---|---|---|---|---:|"
    LC_ALL=C sort -t "$(printf '\t')" -k1,1n -k2,2gr "$tmp/errors.tsv" | awk -F '\t' -v dir="$dir/" '
        BEGIN { split("clean jpeg blur lowcontrast lighting noise photo numbers reject", order, " ") }
        ++shown[$1] <= 10 {
            file = substr($3, 1, length(dir)) == dir ? substr($3, length(dir) + 1) : $3
            printf "| %s | %s | %s | %s | %s |\n", order[$1], file, $4, $5, $5 == "refused" ? "-" : $2 }'
fi
if [ $check = 1 ]; then
    awk -F'|' '$3 ~ /[0-9]/ && $2 !~ /all digits/ {
        name = $2; gsub(/ /, "", name); acc = $6; gsub(/[ %]/, "", acc)
        bar = name == "clean" ? 98 : name == "numbers" || name == "reject" ? 90 : 95
        if (acc + 0 < bar) { printf "realworld_score: %s %s%% is below %d%%\n", name, acc, bar; bad = 1 } }
        END { exit bad }' "$tmp/table.md" >&2 || exit 1
fi
exit 0
