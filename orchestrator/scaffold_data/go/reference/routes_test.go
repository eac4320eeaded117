package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	newMux().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealth(t *testing.T) {
	if code, body := get(t, "/health"); code != 200 || body != "ok" {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestGreeting(t *testing.T) {
	if code, body := get(t, "/greet?name=Ada"); code != 200 || !strings.Contains(body, "Hello, Ada!") {
		t.Fatalf("got %d %q", code, body)
	}
	if _, body := get(t, "/greet?name=%3Cb%3E"); !strings.Contains(body, "&lt;b&gt;") {
		t.Fatalf("name not escaped: %q", body)
	}
}

func TestSum(t *testing.T) {
	if code, body := get(t, "/sum?a=2&b=40"); code != 200 || strings.TrimSpace(body) != `{"sum":42}` {
		t.Fatalf("got %d %q", code, body)
	}
	if code, _ := get(t, "/sum?a=x&b=1"); code != 400 {
		t.Fatalf("got %d", code)
	}
}
