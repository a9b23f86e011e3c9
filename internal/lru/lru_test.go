package lru

import "testing"

func TestCache(t *testing.T) {
	tests := []struct {
		name string
		max  int64
		adds []struct {
			k    string
			cost int64
		}
		want map[string]bool
	}{
		{"fits", 10, []struct {
			k    string
			cost int64
		}{{"a", 3}, {"b", 3}, {"c", 3}}, map[string]bool{"a": true, "b": true, "c": true}},
		{"evicts oldest", 6, []struct {
			k    string
			cost int64
		}{{"a", 3}, {"b", 3}, {"c", 3}}, map[string]bool{"a": false, "b": true, "c": true}},
		{"too big is not stored", 5, []struct {
			k    string
			cost int64
		}{{"a", 3}, {"big", 6}}, map[string]bool{"a": true, "big": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[string, int](tt.max)
			for i, a := range tt.adds {
				c.Add(a.k, i, a.cost)
			}
			for k, want := range tt.want {
				if _, ok := c.Get(k); ok != want {
					t.Errorf("Get(%q) present = %v, want %v", k, ok, want)
				}
			}
		})
	}
}

func TestRecentlyUsedSurvives(t *testing.T) {
	c := New[string, int](2)
	c.Add("a", 1, 1)
	c.Add("b", 2, 1)
	c.Get("a")
	c.Add("c", 3, 1)
	if _, ok := c.Get("a"); !ok {
		t.Error("recently used entry a was evicted")
	}
	if _, ok := c.Get("b"); ok {
		t.Error("least recently used entry b survived")
	}
	c.RemoveIf(func(k string) bool { return k == "a" })
	if c.Len() != 1 {
		t.Errorf("Len = %d after RemoveIf, want 1", c.Len())
	}
}

// TestEvictCallback: every value dropped (evicted, replaced, removed, too
// big) is handed to onEvict once, and the values kept are not.
func TestEvictCallback(t *testing.T) {
	var got []int
	c := NewWithEvict[string, int](4, func(k string, v int) { got = append(got, v) })
	c.Add("a", 1, 2)
	c.Add("b", 2, 2)
	c.Add("a", 3, 2)   // replaces 1
	c.Add("c", 4, 2)   // evicts b (2)
	c.Add("big", 5, 9) // too big: dropped at once
	c.Remove("a")      // 3
	c.RemoveIf(func(k string) bool { return k == "nothing" })
	want := []int{1, 2, 5, 3}
	if len(got) != len(want) {
		t.Fatalf("evicted %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("evicted %v, want %v", got, want)
		}
	}
	if v, ok := c.Get("c"); !ok || v != 4 {
		t.Errorf("c = %v, %v; want 4 kept", v, ok)
	}
}
