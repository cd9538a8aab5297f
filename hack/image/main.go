// Command image writes ipvs-proxy's container image from a root file system
// tarball (mmdebstrap's output, see hack/image.sh): an OCI layout and the
// same layout as one tar file (an OCI archive, which `ctr images import` and
// skopeo's oci-archive: take with the manifest, and so the digest, unchanged),
// and prints the image's manifest digest.
//
// With -file instead of -rootfs it writes an image of a few static binaries
// and nothing else: the test node's pause and agnhost-like images
// (hack/node-images.sh), which no registry can serve here.
//
// The same input and epoch give the same bytes: the layer's entries are
// sorted by name, owned by numeric ids only, and no newer than the epoch; the
// config's dates are the epoch; and go-containerregistry's gzip writes no
// header time. The layer's gzip stream depends on Go's compress/flate, so the
// digest is stable for a given Go release.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		rootfs     = flag.String("rootfs", "", "root file system tarball (input)")
		ref        = flag.String("name", "", "image name with tag, recorded in both outputs")
		epoch      = flag.Int64("epoch", -1, "SOURCE_DATE_EPOCH: the image's creation time and the newest mtime in its layer")
		ociDir     = flag.String("oci", "", "OCI layout directory to write (must not exist); none when empty and -file is used")
		archive    = flag.String("oci-archive", "", "OCI archive (the layout as a tar file) to write")
		revision   = flag.String("revision", "", "source revision, recorded as a label")
		entrypoint = flag.String("entrypoint", "/usr/local/bin/ipvs-proxy", "the image's entrypoint, words separated by spaces")
		cmd        = flag.String("cmd", "", "the image's default arguments to the entrypoint, words separated by spaces")
		comment    = flag.String("comment", "Debian root file system and ipvs-proxy", "the layer's history comment")
		files      fileFlag
	)
	flag.Var(&files, "file", "SRC=DST: a file for a layer of files only, in place of -rootfs (repeatable)")
	flag.Parse()
	if (*rootfs == "") == (len(files) == 0) || *ref == "" || *epoch < 0 || *archive == "" || (*ociDir == "" && *rootfs != "") {
		flag.Usage()
		return errors.New("-rootfs or -file, -name, -epoch, -oci-archive and (with -rootfs) -oci are required")
	}
	tag, err := name.NewTag(*ref)
	if err != nil {
		return fmt.Errorf("-name %q: %w", *ref, err)
	}
	created := time.Unix(*epoch, 0).UTC()

	var layerTar []byte
	if *rootfs != "" {
		if layerTar, err = normalize(*rootfs, created); err != nil {
			return fmt.Errorf("normalize %s: %w", *rootfs, err)
		}
	} else if layerTar, err = filesLayer(files, created); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}

	labels := map[string]string{"org.opencontainers.image.source": "https://github.com/ipvs-proxy/ipvs-proxy"}
	if *revision != "" {
		labels["org.opencontainers.image.revision"] = *revision
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Config: v1.Config{
			Entrypoint: strings.Fields(*entrypoint),
			Cmd:        strings.Fields(*cmd),
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Labels:     labels,
		},
	})
	if err != nil {
		return err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "hack/image.sh", Comment: *comment},
	})
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: created})
	if err != nil {
		return err
	}

	if *ociDir == "" { // the archive is all a test node imports
		tmp, err := os.MkdirTemp("", "image-oci-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*ociDir = filepath.Join(tmp, "oci")
	}
	if _, err := os.Stat(*ociDir); err == nil {
		return fmt.Errorf("%s exists: an OCI layout's index would gain a second entry", *ociDir)
	}
	p, err := layout.Write(*ociDir, empty.Index)
	if err != nil {
		return err
	}
	// The ref.name annotation is what `skopeo copy oci:DIR:TAG` looks up;
	// containerd's importer names the image from its own annotation.
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
		"io.containerd.image.name":          tag.Name(),
	})); err != nil {
		return fmt.Errorf("write %s: %w", *ociDir, err)
	}
	if err := tarDir(*ociDir, *archive, created); err != nil {
		return fmt.Errorf("write %s: %w", *archive, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", tag.Name(), digest)
	return nil
}

// fileFlag collects -file SRC=DST pairs.
type fileFlag [][2]string

func (f *fileFlag) String() string { return fmt.Sprint(*f) }

func (f *fileFlag) Set(v string) error {
	src, dst, ok := strings.Cut(v, "=")
	if !ok || src == "" || clean(dst) == "" {
		return fmt.Errorf("%q is not SRC=DST", v)
	}
	*f = append(*f, [2]string{src, clean(dst)})
	return nil
}

// filesLayer is a layer of the given files, executable and owned by root,
// with their parent directories, written through normalize's rules (sorted,
// mtime the epoch) so the same files give the same digest.
func filesLayer(files fileFlag, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f[1]); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: created}); err != nil {
				return nil, err
			}
		}
		data, err := os.ReadFile(f[0])
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f[1], Mode: 0o755, Size: int64(len(data)), ModTime: created}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "image-files-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	return normalize(tmp.Name(), created)
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

// normalize rewrites the tarball at file with its entries sorted by name,
// without a leading "./", the root directory itself or what is in /dev,
// owned by numeric ids only, with no atime or ctime, and with no mtime after created.
func normalize(file string, created time.Time) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var entries []entry
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		n := clean(hdr.Name)
		// The runtime mounts /dev; device nodes in a layer only make it
		// fail to unpack where mknod is not allowed.
		if n == "" || strings.HasPrefix(n, "dev/") {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
		h := &tar.Header{
			Typeflag: hdr.Typeflag,
			Name:     n,
			Linkname: hdr.Linkname,
			Size:     hdr.Size,
			Mode:     hdr.Mode,
			Uid:      hdr.Uid,
			Gid:      hdr.Gid,
			ModTime:  hdr.ModTime.Truncate(time.Second),
			Devmajor: hdr.Devmajor,
			Devminor: hdr.Devminor,
			Format:   tar.FormatPAX,
		}
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = clean(hdr.Linkname)
		}
		if h.ModTime.After(created) {
			h.ModTime = created
		}
		// Extended attributes (file capabilities) are part of the file
		// system; the PAX time records are not.
		for k, v := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if h.PAXRecords == nil {
					h.PAXRecords = map[string]string{}
				}
				h.PAXRecords[k] = v
			}
		}
		entries = append(entries, entry{h, data})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(clean(a.hdr.Name), clean(b.hdr.Name)) })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	written := map[string]bool{}
	for _, e := range entries {
		// A hard link must follow its target, which sorting can undo.
		if e.hdr.Typeflag == tar.TypeLink && !written[e.hdr.Linkname] {
			return nil, fmt.Errorf("hard link %s sorts before its target %s", e.hdr.Name, e.hdr.Linkname)
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", e.hdr.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("%s: %w", e.hdr.Name, err)
		}
		written[clean(e.hdr.Name)] = true
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// clean is a tar entry's path relative to the root, "" for the root.
func clean(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// tarDir writes the files below dir to file as a tar with sorted names, no
// owner and the same mtime for every entry.
func tarDir(dir, file string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, n := range names {
		if err := addFile(tw, filepath.Join(dir, n), n, mtime); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func addFile(tw *tar.Writer, src, name string, mtime time.Time) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, ModTime: mtime, Format: tar.FormatPAX}
	switch {
	case fi.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		return tw.WriteHeader(hdr)
	case fi.Mode().IsRegular():
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
	default:
		return fmt.Errorf("not a file or directory: %v", fi.Mode())
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	r, err := os.Open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(tw, r)
	return err
}
