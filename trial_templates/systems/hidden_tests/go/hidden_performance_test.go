package main

// Hidden: a decision costs about the same with 50 000 keys as with 1 000. Measured as a ratio of
// two timings in the same process (never an absolute time, so a slow machine does not fail it).

import (
	"fmt"
	"testing"
	"time"
)

func TestHiddenDecisionCostDoesNotGrowWithKeys(t *testing.T) {
	var tick int64
	clock := func() time.Time { tick++; return time.Unix(1_700_000_000, tick*int64(time.Microsecond)) }
	l := NewLimiter(1000, 1000, time.Hour, clock)
	hot := make([]string, 1000)
	for i := range hot {
		hot[i] = fmt.Sprintf("hot-%d", i)
		l.Allow(hot[i])
	}
	// The best of a few rounds of the same 20 000 decisions on keys that already exist.
	measure := func() time.Duration {
		best := time.Duration(1<<63 - 1)
		for round := 0; round < 5; round++ {
			start := time.Now()
			for i := 0; i < 20_000; i++ {
				l.Allow(hot[i%len(hot)])
			}
			if took := time.Since(start); took < best {
				best = took
			}
			if best > 2*time.Second {
				break // already hopeless; do not make the run wait
			}
		}
		return best
	}
	small := measure()
	// Filling up, in chunks of 1 000 new keys: when a chunk already costs 20× the first one,
	// decisions clearly grow with the keys held; stop there rather than wait for 50 000.
	var first time.Duration
	for chunk := 1; chunk < 50; chunk++ {
		start := time.Now()
		for i := 0; i < 1000; i++ {
			l.Allow(fmt.Sprintf("cold-%d-%d", chunk, i))
		}
		took := time.Since(start)
		if chunk == 1 {
			first = took
		} else if took > 20*first && took > 20*time.Millisecond {
			t.Fatalf("1 000 new keys cost %.0f× more with %d keys held than with 1 000", float64(took)/float64(first), l.Len())
		}
	}
	if n := l.Len(); n < 49_000 {
		t.Fatalf("only %d buckets held; the measurement needs 50 000 live keys", n)
	}
	large := measure()
	ratio := float64(large) / float64(small)
	t.Logf("20 000 decisions: %v with 1 000 keys, %v with 50 000 keys (ratio %.2f)", small, large, ratio)
	if ratio > 3 {
		t.Fatalf("a decision with 50 000 keys costs %.1f× one with 1 000 keys (at most 3×)", ratio)
	}
}
