package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func shapeLen(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func TestNPYRoundTrip(t *testing.T) {
	t.Parallel()
	for _, shape := range [][]int{{0, 3}, {1, 1}, {5, 3}, {2, 200}, {7}, {}, {2, 3, 4}, {0}, {3, 0}} {
		n := shapeLen(shape)
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.25 - 3
		}
		if n > 3 {
			data[0], data[1], data[2] = float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1))
		}
		var buf bytes.Buffer
		if err := WriteNPY(&buf, shape, data); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		hlen := int(binary.LittleEndian.Uint16(b[8:]))
		if string(b[:8]) != "\x93NUMPY\x01\x00" || (10+hlen)%64 != 0 || b[10+hlen-1] != '\n' || len(b) != 10+hlen+4*n {
			t.Errorf("shape %v: preamble %q, header length %d, %d bytes", shape, b[:8], hlen, len(b))
		}
		gotShape, got, err := ReadNPY(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if !slices.Equal(gotShape, shape) || !sameFloats(got, data) {
			t.Errorf("shape %v: read back shape %v, %d values", shape, gotShape, len(got))
		}
	}
	if err := WriteNPY(&bytes.Buffer{}, []int{2, 2}, make([]float32, 3)); err == nil {
		t.Error("a shape that does not fit the data was written")
	}
	if err := WriteNPY(&bytes.Buffer{}, []int{-1, -1}, make([]float32, 1)); err == nil {
		t.Error("a negative shape was written")
	}
}

func TestNPYHeaderText(t *testing.T) {
	t.Parallel()
	for shape, want := range map[string]struct {
		shape []int
		dict  string
	}{
		"2-D":    {[]int{3, 4}, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"},
		"1-D":    {[]int{7}, "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }"},
		"scalar": {[]int{}, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
	} {
		h, err := npyHeader(want.shape)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimRight(string(h[10:]), " \n"); got != want.dict {
			t.Errorf("%s: header %q, want %q", shape, got, want.dict)
		}
	}
}

// npyWithHeader builds an .npy file of version 1.0 from a header dict and
// raw data.
func npyWithHeader(dict string, data []byte) []byte {
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+1))
	b = append(b, dict...)
	b = append(b, '\n')
	return append(b, data...)
}

func TestReadNPYAcceptsNumPyVariants(t *testing.T) {
	t.Parallel()
	eight := make([]byte, 8)
	binary.LittleEndian.PutUint32(eight, math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(eight[4:], math.Float32bits(-2))
	for name, b := range map[string][]byte{
		"other key order, no trailing comma": npyWithHeader(`{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}`, eight),
		"double quotes":                      npyWithHeader(`{"descr": "<f4", "fortran_order": False, "shape": (1, 2)}`, eight),
		"trailing comma in a 2-tuple":        npyWithHeader(`{'descr':'<f4','fortran_order':False,'shape':(2,1,),}`, eight),
		"version 2.0": func() []byte {
			dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"
			b := []byte("\x93NUMPY\x02\x00")
			b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)))
			return append(append(b, dict...), eight...)
		}(),
	} {
		shape, data, err := ReadNPY(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if shapeLen(shape) != 2 || !slices.Equal(data, []float32{1.5, -2}) {
			t.Errorf("%s: shape %v, data %v", name, shape, data)
		}
	}
}

func TestReadNPYRefuses(t *testing.T) {
	t.Parallel()
	four := make([]byte, 4)
	good := "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":               {nil, "magic"},
		"bad magic":           {append([]byte("\x93NUMPX\x01\x00\x10\x00"), good...), "magic"},
		"version 4":           {append([]byte("\x93NUMPY\x04\x00\x10\x00"), good...), "version 4.0"},
		"version 1.1":         {append([]byte("\x93NUMPY\x01\x01\x10\x00"), good...), "version 1.1"},
		"short header":        {append([]byte("\x93NUMPY\x01\x00\xff\x00"), good...), "header"},
		"huge v2 header":      {[]byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f"), "more than"},
		"float64":             {npyWithHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)), "dtype"},
		"big-endian":          {npyWithHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", four), "dtype"},
		"fortran order":       {npyWithHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", four), "Fortran"},
		"bad order value":     {npyWithHeader("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", four), "fortran_order"},
		"missing shape":       {npyWithHeader("{'descr': '<f4', 'fortran_order': False}", four), "missing"},
		"unknown key":         {npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", four), "unknown key"},
		"repeated key":        {npyWithHeader("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", four), "twice"},
		"not a tuple":         {npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': 1}", four), "shape"},
		"1-tuple sans comma":  {npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", four), "trailing comma"},
		"negative dim":        {npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", four), "non-negative"},
		"huge dim":            {npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", four), "too large"},
		"product overflows":   {npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", four), "too many"},
		"text after the dict": {npyWithHeader(good+" x", four), "after the dict"},
		"unterminated string": {npyWithHeader("{'descr: '<f4'}", four), ""},
		"escape":              {npyWithHeader(`{'de\scr': '<f4'}`, four), "escapes"},
		"no data":             {npyWithHeader(good, nil), "ends after 0 bytes"},
		"short data":          {npyWithHeader(good, four[:3]), "ends after 3 bytes"},
		"extra data":          {npyWithHeader(good, make([]byte, 5)), "continues"},
		"promises a lot":      {npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 100)}", four), "ends after 4 bytes"},
	} {
		_, _, err := ReadNPY(bytes.NewReader(tc.b))
		if !errors.Is(err, ErrNPY) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrNPY with %q", name, err, tc.want)
		}
	}
}

func FuzzReadNPY(f *testing.F) {
	for _, shape := range [][]int{{2, 3}, {0, 4}, {3}, {}} {
		n := shapeLen(shape)
		var buf bytes.Buffer
		if err := WriteNPY(&buf, shape, make([]float32, n)); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(npyWithHeader(`{"shape": (1, 1,), "descr": "<f4", "fortran_order": False}`, make([]byte, 4)))
	f.Fuzz(func(t *testing.T, b []byte) {
		shape, data, err := ReadNPY(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrNPY) {
				t.Fatalf("error %v does not wrap ErrNPY", err)
			}
			return
		}
		n := 1
		for _, d := range shape {
			if d < 0 {
				t.Fatalf("shape %v", shape)
			}
			n *= d
		}
		if n != len(data) || 4*n > len(b) {
			t.Fatalf("shape %v with %d values from %d bytes", shape, len(data), len(b))
		}
		// What was read writes back and reads again the same.
		var buf bytes.Buffer
		if err := WriteNPY(&buf, shape, data); err != nil {
			t.Fatalf("writing back: %v", err)
		}
		shape2, data2, err := ReadNPY(&buf)
		if err != nil || !slices.Equal(shape, shape2) || !sameFloats(data, data2) {
			t.Fatalf("written back and read again: %v %v, %v", shape2, len(data2), err)
		}
	})
}
