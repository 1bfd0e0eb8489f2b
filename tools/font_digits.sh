#!/usr/bin/env bash
# Printed digits: renders 0-9 with ImageMagick in several Debian fonts, two
# sizes, two positions, dark on light and light on dark, classifies them with
# MODEL and prints the accuracy per font and overall.
# usage: tools/font_digits.sh MODEL.mlp [OUTDIR]   (needs imagemagick, fonts-dejavu-core,
#        fonts-liberation, fonts-urw-base35; make fonts installs them)
set -euo pipefail
case "${1:-}" in --help|-h) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
model=${1:?usage: tools/font_digits.sh MODEL.mlp [OUTDIR]}
[ -r "$model" ] || { echo "font_digits: cannot read $model" >&2; exit 1; }
out=${2:-build/font_digits}
classify=${CLASSIFY:-build/classify}
command -v convert >/dev/null || { echo "font_digits: ImageMagick's convert is missing (apt-get install imagemagick)" >&2; exit 1; }

fonts=("DejaVu Sans" "DejaVu Serif" "DejaVu Sans Mono" "Liberation Sans" "Liberation Serif"
       "Liberation Mono" "Nimbus Sans:bold" "Nimbus Roman" "URW Gothic" "URW Bookman" "C059:italic")
rm -rf "$out"; mkdir -p "$out"
for font in "${fonts[@]}"; do
    file=$(fc-match -f '%{file}' "$font")
    tag=$(echo "$font" | tr -d ' :')
    for size in 48 110; do
        for place in center:+0+0 northwest:+12+8; do
            gravity=${place%%:*}; offset=${place#*:}
            for polarity in dark light; do
                if [ $polarity = dark ]; then bg=white fg=black; else bg='#202020' fg='#e8e8e8'; fi
                for d in 0 1 2 3 4 5 6 7 8 9; do
                    convert -size 160x160 "xc:$bg" -font "$file" -pointsize $size -fill "$fg" \
                        -gravity "$gravity" -annotate "$offset" "$d" \
                        "$out/$tag-$size-$gravity-$polarity-label$d.png"
                done
            done
        done
    done
done

"$classify" --json "$model" "$out"/*.png | awk '
    { match($0, /"file":"[^"]*"/); f = substr($0, RSTART + 8, RLENGTH - 9)
      n = split(f, parts, "/"); split(parts[n], fields, "-"); font = fields[1]
      match(f, /label[0-9]/); want = substr(f, RSTART + 5, 1)
      match($0, /"digit":[0-9]+/); got = substr($0, RSTART + 8, RLENGTH - 8)
      total[font]++; all++; if (got == want) { right[font]++; ok++ } }
    END { for (font in total) printf "%-20s %3d/%3d  %5.1f%%\n", font, right[font], total[font], 100 * right[font] / total[font]
          printf "%-20s %3d/%3d  %5.1f%%\n", "all fonts", ok, all, 100 * ok / all }' | sort
