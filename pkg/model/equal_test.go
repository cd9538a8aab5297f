package model

import (
	"reflect"
	"testing"
)

// TestServiceStateEqual: two states that differ in any one field that can
// be set, however deep (an entry's real server's weight, the health
// check's node port), are not Equal; two built alike are. A field added to
// ServiceState, or to anything it holds, and not compared by Equal fails
// here.
func TestServiceStateEqual(t *testing.T) {
	build := func(differ int) (*ServiceState, int) {
		var st ServiceState
		n := 0
		fill(t, reflect.ValueOf(&st).Elem(), &n, differ)
		return &st, n
	}
	base, leaves := build(-1)
	if same, _ := build(-1); !base.Equal(same) || !same.Equal(base) {
		t.Fatalf("two states built alike are not Equal:\n%+v\n%+v", base, same)
	}
	if leaves < 20 {
		t.Fatalf("only %d fields were set: the walk is broken", leaves)
	}
	for i := range leaves {
		other, _ := build(i)
		if base.Equal(other) || other.Equal(base) {
			t.Errorf("states that differ in field %d of %d are Equal:\n%+v\n%+v", i, leaves, base, other)
		}
	}
	if !(&ServiceState{}).Equal(&ServiceState{Entries: []Entry{}, Problems: []string{}}) {
		t.Error("nil and empty slices are not Equal")
	}
}

// fill sets every field of v that can be set to one value, but the
// differ-th (counted in *n), which gets another; slices get one element
// and pointers a value, so that what they hold is set too.
func fill(t *testing.T, v reflect.Value, n *int, differ int) {
	leaf := func() bool {
		*n++
		return *n-1 == differ
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(leaf())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1 + map[bool]int64{true: 1}[leaf()])
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1 + map[bool]uint64{true: 1}[leaf()])
	case reflect.String:
		v.SetString("a" + map[bool]string{true: "b"}[leaf()])
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), n, differ)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), n, differ)
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), n, differ)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				fill(t, v.Field(i), n, differ)
			}
		}
	default:
		t.Fatalf("fill does not know a %s (%s): teach it, and Equal", v.Kind(), v.Type())
	}
}
