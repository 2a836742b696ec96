# Sums "N passed, N failed[, N skipped]" lines (sourced by tests/run.sh, tests/soak/run.sh and
# .ci/run).
#
#   tally LABEL RC TEXT [TAIL]   counts the last "N passed, N failed" line of TEXT (the output of
#                                a program that exited with RC), with its ", N skipped" when it
#                                has one; no such line counts as one failure, and so does a
#                                non-zero RC with none failed. Prints "ok: LABEL: N passed" (and
#                                the skipped, and the program's "skip" lines, when there are
#                                any), or the last TAIL (default 40) lines of TEXT and "FAILED:
#                                LABEL (exit RC): N passed, N failed".
#   tally_total                  prints the sum: "N passed, N failed, N skipped"; returns 1 on any
#                                failure.
tally_p=0
tally_f=0
tally_s=0
tally() {
    _tally_line=$(printf '%s\n' "$3" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    _tally_sn=0
    if [ -z "$_tally_line" ]; then
        _tally_pn=0; _tally_fn=1
    else
        _tally_pn=${_tally_line%% passed*}
        _tally_fn=${_tally_line#*, }; _tally_fn=${_tally_fn%% failed*}
        case $_tally_line in
        *", "*" skipped"*) _tally_sn=${_tally_line##*failed, }; _tally_sn=${_tally_sn%% skipped*} ;;
        esac
        [ "$2" -eq 0 ] || [ "$_tally_fn" -gt 0 ] || _tally_fn=1
    fi
    if [ "$_tally_fn" -gt 0 ]; then
        [ "${4:-40}" -gt 0 ] && printf '%s\n' "$3" | tail -n "${4:-40}"
        echo "FAILED: $1 (exit $2): $_tally_pn passed, $_tally_fn failed"
    elif [ "$_tally_sn" -gt 0 ]; then
        printf '%s\n' "$3" | grep -E '^skip[: ]' | sed 's/^/  /'
        echo "ok: $1: $_tally_pn passed, $_tally_sn skipped"
    else
        echo "ok: $1: $_tally_pn passed"
    fi
    tally_p=$((tally_p + _tally_pn))
    tally_f=$((tally_f + _tally_fn))
    tally_s=$((tally_s + _tally_sn))
}
tally_total() {
    echo "$tally_p passed, $tally_f failed, $tally_s skipped"
    [ "$tally_f" -eq 0 ]
}
