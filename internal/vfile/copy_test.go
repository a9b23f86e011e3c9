package vfile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// memGetter serves objects from memory and counts the Gets.
type memGetter struct {
	objects map[string][]byte
	gets    int
}

func (m *memGetter) Get(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	m.gets++
	b, ok := m.objects[key]
	if !ok || off+n > int64(len(b)) {
		return nil, errors.New("no such range")
	}
	return io.NopCloser(bytes.NewReader(b[off : off+n])), nil
}

func TestCopy(t *testing.T) {
	obj := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	tests := []struct {
		name   string
		pieces []Piece
		gap    int64
		want   string
		gets   int
	}{
		{"memory only", []Piece{Bytes([]byte("head")), Bytes([]byte("tail"))}, 0, "headtail", 0},
		{"adjacent ranges, one Get", []Piece{Stored("o", 0, 3), Stored("o", 3, 3)}, 0, "012345", 1},
		{"a gap read through", []Piece{Stored("o", 0, 2), Stored("o", 5, 2)}, 3, "0156", 1},
		{"a gap too wide", []Piece{Stored("o", 0, 2), Stored("o", 10, 2)}, 3, "01ab", 2},
		{"backwards", []Piece{Stored("o", 10, 2), Stored("o", 0, 2)}, 100, "ab01", 2},
		{"mixed", []Piece{Bytes([]byte("<")), Stored("o", 34, 2), Bytes([]byte(">")), Stored("p", 0, 1)}, 0, "<yz>P", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &memGetter{objects: map[string][]byte{"o": obj, "p": []byte("P")}}
			f := New("f", "", time.Time{}, "", tc.pieces)
			got, err := ReadAll(context.Background(), g, f, tc.gap)
			if err != nil || string(got) != tc.want || g.gets != tc.gets {
				t.Errorf("ReadAll = %q, %v with %d Gets; want %q with %d", got, err, g.gets, tc.want, tc.gets)
			}
		})
	}
	g := &memGetter{objects: map[string][]byte{}}
	if _, err := ReadAll(context.Background(), g, New("f", "", time.Time{}, "", []Piece{Stored("missing", 0, 1)}), 0); err == nil {
		t.Error("ReadAll of a missing object: no error")
	}
}
