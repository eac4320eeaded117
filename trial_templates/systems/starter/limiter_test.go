package main

import (
	"net/http/httptest"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestBurstThenRefusal(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(1, 3, time.Minute, clock.now)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("request past the burst allowed")
	}
	clock.advance(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no token back after a second at rate 1")
	}
}

func TestKeysAreIndependent(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(1, 1, time.Minute, clock.now)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("b refused because of a")
	}
}

func TestIdleBucketsAreDropped(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(1, 1, time.Minute, clock.now)
	l.Allow("a")
	clock.advance(2 * time.Minute)
	l.Allow("b")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets, want 1 (a was idle)", n)
	}
}

func TestHTTP(t *testing.T) {
	l := NewLimiter(0, 1, time.Minute, time.Now)
	mux := newMux(l)
	for _, want := range []int{200, 429} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/allow?key=k", nil))
		if rec.Code != want {
			t.Fatalf("got %d, want %d", rec.Code, want)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/allow", nil))
	if rec.Code != 400 {
		t.Fatalf("no key: got %d, want 400", rec.Code)
	}
}
