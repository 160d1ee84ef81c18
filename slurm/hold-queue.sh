#!/usr/bin/env bash
# slurm/hold-queue.sh - keep a cluster's queued jobs off the node for a while, then give them back, unchanged.
#
# For running the test suite (whose SLURM tests need the node) on a cluster that is busy with a grid: `hold` puts
# every queued job on hold (pending ones: `scontrol hold`; running ones: `scontrol requeuehold`, so they stop and
# go back to the queue held: a hiera-study run resumes from its last checkpoint) and writes their ids to FILE;
# `release` releases exactly those ids and removes FILE. Jobs already held before `hold` are not listed, so
# `release` never frees what someone else held. Nothing is cancelled.
#
# Usage:
#   bash slurm/hold-queue.sh hold FILE      FILE: one job id a line (written atomically; refuses an existing FILE)
#   bash slurm/hold-queue.sh release FILE
set -euo pipefail

die() { echo "hold-queue: $*" >&2; exit 2; }
[ $# = 2 ] || die "usage: bash slurm/hold-queue.sh hold|release FILE"
file=$2
case $1 in
    hold)
        [ ! -e "$file" ] || die "$file exists (a hold not released yet?): release it first, or name another file"
        # %A: the job id (a pending array's own id covers its pending tasks); %T state; %r reason
        jobs=$(squeue -h -o '%A %T %r') || die "squeue failed: is the cluster up?"
        pending=$(awk '$2 == "PENDING" && $3 !~ /^JobHeld/ { print $1 }' <<< "$jobs" | sort -u)
        running=$(awk '$2 ~ /^(RUNNING|CONFIGURING|COMPLETING|SUSPENDED)$/ { print $1 }' <<< "$jobs" | sort -u)
        tmp=$(mktemp "$file.XXXXXX")
        printf '%s\n' $pending $running > "$tmp"
        sed -i '/^$/d' "$tmp"
        mv "$tmp" "$file"
        for id in $pending; do scontrol hold "$id"; done
        for id in $running; do scontrol requeuehold "$id"; done
        echo "hold-queue: held $(wc -l < "$file") job(s), listed in $file" >&2 ;;
    release)
        [ -f "$file" ] || die "$file not found: nothing to release"
        n=0
        while read -r id; do
            [ -n "$id" ] || continue
            scontrol release "$id" 2> /dev/null || echo "hold-queue: job $id not released (gone?)" >&2
            n=$((n + 1))
        done < "$file"
        rm -f "$file"
        echo "hold-queue: released $n job(s)" >&2 ;;
    *) die "usage: bash slurm/hold-queue.sh hold|release FILE" ;;
esac
