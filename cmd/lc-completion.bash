# bash completion for the libcompress tools (lc-import, lc-info, lc-eval, ...).
# Installed by `make install` and the Debian package as
# PREFIX/share/bash-completion/completions/lc-TOOL, one name per tool.
#
# The options come from each tool's own --help, so they never drift from
# it; the profile names from `lc-ledger profiles`; the text-set names from
# the manifest the tools read.  Option values that are fixed lists are
# below (tests/cli/t0800-install.sh checks each against the tool's --help).

_lc_values() { # TOOL OPTION -> the fixed values of OPTION, or nothing
    case "$1 $2" in
    "lc-quant --method" | "lc-quant -m") echo "rtn gptq awq" ;;
    "lc-lowrank --method" | "lc-lowrank -m") echo "whiten svd asvd" ;;
    "lc-prune --method" | "lc-prune -m") echo "magnitude wanda sparsegpt" ;;
    "lc-prune --scope") echo "row tensor global" ;;
    "lc-prune --nm") echo "2:4 4:8" ;;
    "lc-export --to") echo "gguf safetensors llama2c" ;;
    "lc-export --type") echo "f32 f16 bf16 q8_0 q4_0 q4_1 q4_k q6_k" ;;
    "lc-import --format" | "lc-import -f") echo "auto hf gguf llama2c" ;;
    "lc-ledger --format" | "lc-ledger -f") echo "table csv json" ;;
    "lc-ledger --x-dir" | "lc-ledger --y-dir") echo "min max" ;;
    "lc-ledger --status") echo "ok failed" ;;
    "lc-ledger --x" | "lc-ledger --y")
        echo "ppl kld_mean kld_median kld_p99 top1 rms_dp ln_ppl_ratio prefill_tok_s decode_tok_s peak_rss stored_bytes bpw" ;;
    "lc-eval --score") echo "second-half all" ;;
    *" --isa") echo "scalar avx2 avx512" ;;
    *" --dtype" | *" -d") echo "f32 f16 bf16" ;;
    esac
}

# the manifest the tools read: $LC_DATASETS, beside the tool in a checkout,
# or the installed share directory
_lc_manifest() {
    local bin dir
    [ -n "${LC_DATASETS:-}" ] && { echo "$LC_DATASETS"; return; }
    bin=$(type -P "$1" 2>/dev/null) || return
    dir=${bin%/*}/..
    if [ -f "$dir/datasets/manifest.txt" ]; then echo "$dir/datasets/manifest.txt"
    elif [ -f "$dir/share/libcompress/datasets/manifest.txt" ]; then echo "$dir/share/libcompress/datasets/manifest.txt"
    fi
}

_lc_complete() {
    local cur prev tool words
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    tool=${COMP_WORDS[0]##*/}
    COMPREPLY=()
    words=$(_lc_values "$tool" "$prev")
    if [ -n "$words" ]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return 0
    fi
    case $prev in
    --profile | -p)
        [ "$tool" = lc-eval ] || [ "$tool" = lc-ledger ] || return 0
        words=$(lc-ledger profiles -f csv 2>/dev/null | sed '1d; s/,.*//')
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return 0 ;;
    --text | -t | --calib)
        local m
        m=$(_lc_manifest "$tool")
        [ -n "$m" ] && words=$(sed -n 's/^\([a-z][a-z0-9._-]*\)[[:space:]].*/\1/p' "$m" 2>/dev/null)
        COMPREPLY=($(compgen -W "$words" -- "$cur") $(compgen -f -- "$cur"))
        return 0 ;;
    -o | --output | --base | --base-cache | --db | --profiles | --tokenizer | --tokenizer-out | --model | --reference | --config)
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        words=$("$tool" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return 0
    fi
    if [ "$tool" = lc-ledger ]; then
        local i
        for ((i = 1; i < COMP_CWORD; i++)); do
            case ${COMP_WORDS[i]} in list | show | compare | pareto | profiles) return 0 ;; esac
        done
        COMPREPLY=($(compgen -W "list show compare pareto profiles regressions report merge add-failure" -- "$cur"))
        return 0
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}

complete -F _lc_complete lc-import lc-info lc-eval lc-gen lc-prune lc-quant lc-lowrank lc-distill lc-export lc-ledger
