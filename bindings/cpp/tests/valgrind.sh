#!/bin/sh
# valgrind.sh LOG_FILE PROGRAM [ARGS...]: runs PROGRAM under valgrind memcheck and fails on any
# memory error or any definitely lost byte ("still reachable" is accepted: the library keeps
# process-wide statics). Prints valgrind's summary; the whole log on failure.
log=$1
shift
valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --num-callers=30 --log-file="$log" "$@"
status=$?
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|in use at exit" "$log" |
    sed 's/^==[0-9]*== *//'
if [ "$status" -ne 0 ]; then
    echo "valgrind: $* exited $status; the log follows" >&2
    cat "$log" >&2
fi
exit "$status"
