#!/usr/bin/env bash
# Real-world digits: renders 0-9 in printed and handwriting-style Debian fonts,
# then build/realworld_gen turns those glyphs and MNIST digits into photographed,
# scanned and drawn-looking pictures, one directory per category, and a manifest.
# usage: tools/realworld.sh OUTDIR [--split test|dev] [--per-category N]
#   --split test   MNIST test digits, seed 1 (default): the set to report
#   --split dev    MNIST training digits, another seed: for tuning preprocessing
#   Glyphs are cached in OUTDIR/glyphs. Same command, byte-identical files.
#   Needs imagemagick, libstb-dev and the fonts: fonts-dejavu-core fonts-liberation
#   fonts-urw-base35 fonts-freefont-ttf fonts-comic-neue fonts-humor-sans
#   fonts-dkg-handwriting fonts-breip fonts-bwht
set -euo pipefail
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in --help|-h) usage; exit 0 ;; ""|-*) usage >&2; exit 1 ;; esac
out=$1; shift
gen_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --split|--per-category)
            [ $# -ge 2 ] || { echo "realworld: $1 needs a value" >&2; exit 1; }
            # checked here too: a bad value must fail before the old set is removed
            case "$1:$2" in
                --split:test|--split:dev) ;;
                --per-category:[1-9]|--per-category:[1-9][0-9]|--per-category:[1-9][0-9][0-9]|\
                --per-category:[1-9][0-9][0-9][0-9]|--per-category:[1-9][0-9][0-9][0-9][0-9]|--per-category:100000) ;;
                *) echo "realworld: $1 $2: expected test|dev for --split, 1..100000 for --per-category" >&2; exit 1 ;;
            esac
            gen_args+=("$1" "$2"); shift 2 ;;
        --help|-h) usage; exit 0 ;;
        *) echo "realworld: unknown option $1" >&2; usage >&2; exit 1 ;;
    esac
done
command -v convert >/dev/null || { echo "realworld: ImageMagick's convert is missing (apt-get install imagemagick)" >&2; exit 1; }
command -v fc-match >/dev/null || { echo "realworld: fc-match is missing (apt-get install fontconfig)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)

# TAG|fontconfig pattern|family it must resolve to|style word it must have|Debian package
# Excluded: Femkeklaver (fonts-femkeklaver): its digits are hollow double
# outlines, not strokes anyone writes with a pen.
fonts=(
    "DejaVuSans|DejaVu Sans:style=Book|DejaVu Sans|Book|fonts-dejavu-core"
    "DejaVuSerif|DejaVu Serif:style=Book|DejaVu Serif|Book|fonts-dejavu-core"
    "DejaVuSansMono|DejaVu Sans Mono:style=Book|DejaVu Sans Mono|Book|fonts-dejavu-core"
    "DejaVuSansBold|DejaVu Sans:style=Bold|DejaVu Sans|Bold|fonts-dejavu-core"
    "LiberationSans|Liberation Sans:style=Regular|Liberation Sans|Regular|fonts-liberation"
    "LiberationSerif|Liberation Serif:style=Regular|Liberation Serif|Regular|fonts-liberation"
    "LiberationMono|Liberation Mono:style=Regular|Liberation Mono|Regular|fonts-liberation"
    "NimbusSans|Nimbus Sans:style=Regular|Nimbus Sans|Regular|fonts-urw-base35"
    "NimbusSansBold|Nimbus Sans:style=Bold|Nimbus Sans|Bold|fonts-urw-base35"
    "NimbusRoman|Nimbus Roman:style=Regular|Nimbus Roman|Regular|fonts-urw-base35"
    "NimbusMonoPS|Nimbus Mono PS:style=Regular|Nimbus Mono PS|Regular|fonts-urw-base35"
    "URWGothic|URW Gothic:style=Book|URW Gothic|Book|fonts-urw-base35"
    "URWBookman|URW Bookman:style=Light|URW Bookman|Light|fonts-urw-base35"
    "C059|C059:style=Roman|C059|Roman|fonts-urw-base35"
    "P052|P052:style=Roman|P052|Roman|fonts-urw-base35"
    "FreeSans|FreeSans:style=Regular|FreeSans|Regular|fonts-freefont-ttf"
    "FreeSerif|FreeSerif:style=Regular|FreeSerif|Regular|fonts-freefont-ttf"
    "ComicNeue|Comic Neue:style=Regular|Comic Neue|Regular|fonts-comic-neue"
    "HumorSans|Humor Sans|Humor Sans||fonts-humor-sans"
    "DkgHandwriting|DkgHandwriting:style=Roman|DkgHandwriting|Roman|fonts-dkg-handwriting"
    "Breip|Breip|Breip||fonts-breip"
    "BecauseWeBuild|Because We Build|Because We Build||fonts-bwht"
    "BecauseWeConnect|Because We Connect|Because We Connect||fonts-bwht"
    "BecauseWeCreate|Because We Create|Because We Create||fonts-bwht"
    "BecauseWeLearn|Because We Learn|Because We Learn||fonts-bwht"
    "BecauseWeMentor|Because We Mentor|Because We Mentor||fonts-bwht"
    "BecauseWeOrganize|Because We Organize|Because We Organize||fonts-bwht"
)

# fc-match always answers with some font; a missing package shows up as the
# wrong family, which would silently turn a handwriting font into DejaVu.
font_file() {
    local pattern=$1 family=$2 style=$3 package=$4 got
    got=$(fc-match -f '%{family}|%{style}|%{file}' "$pattern")
    case ",${got%%|*}," in *",$family,"*) ;; *)
        echo "realworld: font '$family' is missing (fc-match gives '${got%%|*}'): apt-get install $package" >&2
        return 1 ;;
    esac
    if [ -n "$style" ]; then
        local styles=${got#*|}; styles=${styles%%|*}
        case ",$styles," in *",$style,"*) ;; *)
            echo "realworld: font '$family' has no style $style (got '$styles'): apt-get install $package" >&2
            return 1 ;;
        esac
    fi
    echo "${got##*|}"
}

# Gray, dark on white, trimmed to the ink with a small margin; -strip keeps
# ImageMagick's label text and timestamps out of the file.
render_glyph() {
    local file=$1 digit=$2 dest=$3
    convert -background white -fill black -font "$file" -pointsize 160 "label:$digit" \
        -trim +repage -bordercolor white -border 4 -colorspace Gray -depth 8 -strip \
        "png:$dest.tmp" && mv "$dest.tmp" "$dest"
}

# Every font is checked before anything is drawn; the missing glyphs are then
# rendered two at a time (one convert per glyph is most of a cold run).
mkdir -p "$out/glyphs"
todo=()
for entry in "${fonts[@]}"; do
    IFS='|' read -r tag pattern family style package <<<"$entry"
    file=$(font_file "$pattern" "$family" "$style" "$package")
    for d in 0 1 2 3 4 5 6 7 8 9; do
        glyph="$out/glyphs/$tag-$d.png"
        [ -s "$glyph" ] || todo+=("$file" "$d" "$glyph")
    done
done
if [ ${#todo[@]} -gt 0 ]; then
    export -f render_glyph
    printf '%s\0' "${todo[@]}" | xargs -0 -n 3 -P 2 bash -c 'render_glyph "$@"' render_glyph
fi

gen="$here/build/realworld_gen"
src="$here/tools/realworld_gen.c"
if [ ! -x "$gen" ] || [ "$src" -nt "$gen" ] || [ "$here/mlp.h" -nt "$gen" ]; then
    mkdir -p "$here/build"
    ${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -O2 -o "$gen" "$src" -lm
fi
# a smaller N or another split must not leave the last run's pictures behind
for category in clean jpeg blur lowcontrast lighting noise photo numbers reject; do
    rm -rf "${out:?}/$category"
done
rm -f "$out/manifest.csv"
"$gen" "${gen_args[@]}" "$out/glyphs" "$here/data/mnist" "$out"
