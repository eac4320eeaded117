package main

// Hidden: the brief's batch endpoint.

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func batch(t *testing.T, l *Limiter, body string) (int, []map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	newMux(l).ServeHTTP(rec, httptest.NewRequest("POST", "/v1/allow/batch", strings.NewReader(body)))
	var out struct {
		Results []map[string]any `json:"results"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out.Results
}

func TestHiddenBatchAnswersEveryKeyInOrder(t *testing.T) {
	l := NewLimiter(0, 2, time.Minute, time.Now)
	code, results := batch(t, l, `{"keys": ["a", "b", "a", "a"]}`)
	if code != 200 || len(results) != 4 {
		t.Fatalf("got %d with %d results, want 200 with 4", code, len(results))
	}
	want := []struct {
		key     string
		allowed bool
	}{{"a", true}, {"b", true}, {"a", true}, {"a", false}}
	for i, w := range want {
		if results[i]["key"] != w.key || results[i]["allowed"] != w.allowed {
			t.Fatalf("result %d = %v, want key %q allowed %v", i, results[i], w.key, w.allowed)
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("a batch and single requests must share buckets: b should have one token left")
	}
	if ok, _ := l.Allow("b"); ok {
		t.Fatal("a batch and single requests must share buckets: b should be empty")
	}
}

func TestHiddenBadBatchesAreRefused(t *testing.T) {
	l := NewLimiter(1, 1, time.Minute, time.Now)
	many := `{"keys": [` + strings.TrimSuffix(strings.Repeat(`"k",`, 1001), ",") + `]}`
	for _, body := range []string{`nope`, `{"keys": []}`, `{"keys": [""]}`, `{"keys": [1]}`, `{}`, many} {
		if code, _ := batch(t, l, body); code != 400 {
			t.Fatalf("%.40s: got %d, want 400", body, code)
		}
	}
}
