package main

import (
	"math"
	"sync"
	"time"
)

// bucket is one key's token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// Limiter hands out tokens per key: each key's bucket holds up to burst tokens and refills
// at rate tokens per second. Buckets nobody used for idle are dropped to bound memory.
type Limiter struct {
	rate  float64
	burst float64
	idle  time.Duration
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

// NewLimiter makes a limiter; now is the clock (time.Now in production, a fake in tests).
func NewLimiter(rate, burst float64, idle time.Duration, now func() time.Time) *Limiter {
	return &Limiter{rate: rate, burst: burst, idle: idle, now: now, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket. It reports whether there was one, and how many
// tokens are left.
func (l *Limiter) Allow(key string) (bool, float64) {
	now := l.now()
	b := l.bucketFor(key, now)
	return b.take(now, l.rate, l.burst)
}

// Len is the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// bucketFor returns key's bucket, making a full one on first use.
func (l *Limiter) bucketFor(key string, now time.Time) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdle(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	return b
}

// evictIdle drops the buckets nobody used for l.idle. l.mu is held.
func (l *Limiter) evictIdle(now time.Time) {
	for key, b := range l.buckets {
		if now.Sub(b.last) > l.idle {
			delete(l.buckets, key)
		}
	}
}

// take refills the bucket for the time since its last use, then takes a token if it can.
func (b *bucket) take(now time.Time, rate, burst float64) (bool, float64) {
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(burst, b.tokens+elapsed*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false, b.tokens
	}
	b.tokens--
	return true, b.tokens
}
