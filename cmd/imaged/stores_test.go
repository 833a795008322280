package main

import (
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseStoreFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    storeFlags
		wantErr string
	}{
		{name: "implicit single store", want: storeFlags{}},
		{name: "two stores, first is default", args: []string{"--stores", "fast=/a, slow=/b/"},
			want: storeFlags{Stores: []storeSpec{{Name: "fast", Dir: "/a"}, {Name: "slow", Dir: "/b"}}, Default: "fast"}},
		{name: "default and descriptions", args: []string{"--stores", "fast=/a,slow=/b", "--default-store", "slow", "--store-descriptions", "fast=Fast SSD; slow=Cheap disk"},
			want: storeFlags{Stores: []storeSpec{{Name: "fast", Dir: "/a", Description: "Fast SSD"}, {Name: "slow", Dir: "/b", Description: "Cheap disk"}}, Default: "slow"}},
		{name: "environment", env: map[string]string{"IMAGED_STORES": "x=/x", "IMAGED_DEFAULT_STORE": "x"},
			want: storeFlags{Stores: []storeSpec{{Name: "x", Dir: "/x"}}, Default: "x"}},
		{name: "bad entry", args: []string{"--stores", "fast"}, wantErr: "want name=dir"},
		{name: "twice", args: []string{"--stores", "a=/a,a=/b"}, wantErr: "given twice"},
		{name: "unknown default", args: []string{"--stores", "a=/a", "--default-store", "b"}, wantErr: "not one of --stores"},
		{name: "default without stores", args: []string{"--default-store", "b"}, wantErr: "needs --stores"},
		{name: "description of unknown store", args: []string{"--stores", "a=/a", "--store-descriptions", "b=x"}, wantErr: "--store-descriptions"},
		{name: "with store-dir", args: []string{"--stores", "a=/a", "--store-dir", "/s"}, wantErr: "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseServeFlags(tt.args, envOf(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Stores, tt.want) {
				t.Fatalf("stores = %+v, want %+v", c.Stores, tt.want)
			}
		})
	}
}

func TestOpenStores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	named, all, err := openStores(storeFlags{Stores: []storeSpec{{Name: "a", Dir: filepath.Join(dir, "a")}, {Name: "b", Dir: filepath.Join(dir, "b")}}, Default: "b"}, "")
	if err != nil || len(named) != 2 || len(all) != 2 || named[1].Name != "b" {
		t.Fatalf("openStores: %v, %d named, %d stores", err, len(named), len(all))
	}
	named, all, err = openStores(storeFlags{}, filepath.Join(dir, "images"))
	if err != nil || named != nil || len(all) != 1 {
		t.Fatalf("implicit store: %v, %v, %d", err, named, len(all))
	}
}
