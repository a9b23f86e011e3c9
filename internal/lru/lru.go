// Package lru is a small concurrency-safe least-recently-used cache bounded by
// the total cost of its entries.
package lru

import (
	"container/list"
	"sync"
)

// Cache maps keys to values, evicting the least recently used entries when
// the total cost exceeds the bound.
type Cache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int64
	cost    int64
	ll      *list.List
	items   map[K]*list.Element
	onEvict func(K, V)
}

type entry[K comparable, V any] struct {
	key  K
	val  V
	cost int64
}

// New returns a cache holding entries of total cost at most max.
func New[K comparable, V any](max int64) *Cache[K, V] {
	return &Cache[K, V]{max: max, ll: list.New(), items: make(map[K]*list.Element)}
}

// NewWithEvict returns a cache like New that calls onEvict, outside its
// lock, with every value it drops: evicted, removed or replaced by Add.
func NewWithEvict[K comparable, V any](max int64, onEvict func(K, V)) *Cache[K, V] {
	c := New[K, V](max)
	c.onEvict = onEvict
	return c
}

// Get returns the value for key and marks it recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Add stores val under key with the given cost. An entry costlier than the
// whole bound is not stored (and is dropped at once).
func (c *Cache[K, V]) Add(key K, val V, cost int64) {
	c.mu.Lock()
	var dropped []*entry[K, V]
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry[K, V])
		if c.onEvict != nil {
			dropped = append(dropped, &entry[K, V]{key, e.val, e.cost})
		}
		c.cost += cost - e.cost
		e.val, e.cost = val, cost
		c.ll.MoveToFront(el)
	} else if cost <= c.max {
		c.items[key] = c.ll.PushFront(&entry[K, V]{key, val, cost})
		c.cost += cost
	} else if c.onEvict != nil {
		dropped = append(dropped, &entry[K, V]{key, val, cost})
	}
	for c.cost > c.max && c.ll.Len() > 0 {
		dropped = c.removeElement(c.ll.Back(), dropped)
	}
	c.mu.Unlock()
	c.evicted(dropped)
}

// Remove drops key from the cache.
func (c *Cache[K, V]) Remove(key K) {
	c.mu.Lock()
	var dropped []*entry[K, V]
	if el, ok := c.items[key]; ok {
		dropped = c.removeElement(el, dropped)
	}
	c.mu.Unlock()
	c.evicted(dropped)
}

// RemoveIf drops every entry whose key matches.
func (c *Cache[K, V]) RemoveIf(match func(K) bool) {
	c.mu.Lock()
	var dropped []*entry[K, V]
	for k, el := range c.items {
		if match(k) {
			dropped = c.removeElement(el, dropped)
		}
	}
	c.mu.Unlock()
	c.evicted(dropped)
}

// Cost is the total cost of the entries.
func (c *Cache[K, V]) Cost() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cost
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// removeElement unlinks el and, when there is an onEvict, appends its
// entry to dropped.
func (c *Cache[K, V]) removeElement(el *list.Element, dropped []*entry[K, V]) []*entry[K, V] {
	e := el.Value.(*entry[K, V])
	c.ll.Remove(el)
	delete(c.items, e.key)
	c.cost -= e.cost
	if c.onEvict != nil {
		dropped = append(dropped, e)
	}
	return dropped
}

// evicted calls onEvict for the dropped entries.
func (c *Cache[K, V]) evicted(dropped []*entry[K, V]) {
	for _, e := range dropped {
		c.onEvict(e.key, e.val)
	}
}
