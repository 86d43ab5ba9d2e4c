# Sourced by the scripts that run a list of checks and report each (packaging/linux/cross-test.sh,
# packaging/windows/run-tests.sh): `result NAME STATUS` counts one check and prints it with the
# seconds since `last` (which the script sets where the check began), and `results_end LABEL`
# prints the failed ones and the totals, and returns non-zero when any failed.
passed=0
failed=0
failures=()
last=$(date +%s)
result() { # name status
    local now
    now=$(date +%s)
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'ok    %s (%ss)\n' "$1" "$((now - last))"
    else
        failed=$((failed + 1))
        failures+=("$1")
        printf 'FAIL  %s (%ss)\n' "$1" "$((now - last))"
    fi
    last=$now
}
results_end() { # label
    if [ "$failed" -ne 0 ]; then
        printf 'failed: %s\n' "${failures[@]}"
    fi
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
