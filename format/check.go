package format

import "github.com/imaged/imaged"

// Check compares an inspection with the image's declared disk_format. It
// returns an *imaged.Error with code EINVALID when the data is unsafe (see
// Result.Safe) or contradicts disk_format, and nil otherwise.
//
// Raw-like declarations (raw and the Amazon ami/aki/ari kinds) accept any
// data no inspector recognises as a container format, including ISO images
// and fixed VHDs (raw data with a trailing footer that raw readers never
// look at). disk_format values that cannot be inspected (ploop, or formats
// an operator added) are not compared, but unsafe data is refused still.
func Check(res Result, declared string) error {
	if res.Safe != nil {
		return res.Safe
	}
	ok := true
	switch declared {
	case Raw, "ami", "aki", "ari":
		ok = res.Format == Raw || res.Format == ISO || (res.Format == VHD && res.Subformat == "fixed")
	case QCOW2, VMDK, VHD, VHDX, VDI, ISO:
		ok = res.Format == declared
	}
	if !ok {
		return imaged.Errorf(imaged.EINVALID,
			"Image data does not match disk_format %s: the data is in %s format.", declared, res.Format)
	}
	return nil
}
