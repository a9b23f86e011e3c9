package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// wrk is the alternative load generator (-client wrk). Its done() hook
// prints the summary in a line the bench parses.
const wrkDone = `
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("JITBENCH %d %d %d %d\n", summary.duration, summary.requests, summary.bytes,
		e.connect + e.read + e.write + e.status + e.timeout))
end
`

const wrkRanges = `
local size = %d
local span = %d
local seed = %d
local n = 0
setup = function(thread)
	thread:set("tid", n)
	n = n + 1
end
init = function(args)
	math.randomseed(seed + 7919 * tid)
end
request = function()
	local x = math.random(0, size - span)
	return wrk.format("GET", wrk.path, {["Range"] = string.format("bytes=%%d-%%d", x, x + span - 1)})
end
`

func runWrk(ctx context.Context, dir, url string, conns int, d time.Duration, script string) (loadResult, error) {
	f, err := os.CreateTemp(dir, "wrk-*.lua")
	if err != nil {
		return loadResult{}, err
	}
	f.WriteString(script + wrkDone)
	f.Close()
	defer os.Remove(f.Name())
	threads := min(conns, 2)
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	cmd := exec.CommandContext(ctx, "wrk", "-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns),
		"-d", fmt.Sprintf("%ds", secs), "--timeout", "60s", "-s", f.Name(), url)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("wrk: %v: %s", err, stderr.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var us, reqs, bytes, errs int64
		if _, err := fmt.Sscanf(sc.Text(), "JITBENCH %d %d %d %d", &us, &reqs, &bytes, &errs); err == nil {
			r := loadResult{Bytes: bytes, Requests: reqs, Errors: errs, Elapsed: time.Duration(us) * time.Microsecond}
			if errs > 0 {
				return r, fmt.Errorf("wrk: %d errors:\n%s", errs, out.String())
			}
			return r, nil
		}
	}
	return loadResult{}, fmt.Errorf("wrk printed no summary:\n%s%s", out.String(), stderr.String())
}

func wrkFullDownloads(ctx context.Context, dir, url string, conns int, d time.Duration) (loadResult, error) {
	return runWrk(ctx, dir, url, conns, d, "")
}

func wrkRandomRanges(ctx context.Context, dir, url string, size int64, conns int, d time.Duration, seed uint64) (loadResult, error) {
	return runWrk(ctx, dir, url, conns, d, fmt.Sprintf(wrkRanges, size, rangeLen, seed%1000003))
}
