// int8 2-D pooling over NC planes of H x W (input and output share one scale and zero point, as TFLite's
// integer pooling requires), with TFLite's integer arithmetic: the average is the int32 sum of the
// stored values over the window's cells inside the input, divided rounding half away from zero.

export function qavgpool2d(
  x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, lo: i32, hi: i32,
): void {
  for (let p = 0; p < NC; p++) {
    const xp = x + <usize>(p * H * W);
    for (let oh = 0; oh < OH; oh++) {
      const ihTop = oh * SH - PH;
      const ih0 = max(0, ihTop), ih1 = min(H, ihTop + KH);
      for (let ow = 0; ow < OW; ow++) {
        const iwLeft = ow * SW - PW;
        const iw0 = max(0, iwLeft), iw1 = min(W, iwLeft + KW);
        let sum = 0;
        for (let ih = ih0; ih < ih1; ih++) {
          const xr = xp + <usize>(ih * W);
          for (let iw = iw0; iw < iw1; iw++) sum += <i32>load<i8>(xr + <usize>iw);
        }
        const count = (ih1 - ih0) * (iw1 - iw0);
        const avg = count == 0 ? 0 : sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
        store<i8>(y + <usize>((p * OH + oh) * OW + ow), <i8>min(hi, max(lo, avg)));
      }
    }
  }
}

export function qmaxpool2d(
  x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, lo: i32, hi: i32,
): void {
  for (let p = 0; p < NC; p++) {
    const xp = x + <usize>(p * H * W);
    for (let oh = 0; oh < OH; oh++) {
      const ihTop = oh * SH - PH;
      const ih0 = max(0, ihTop), ih1 = min(H, ihTop + KH);
      for (let ow = 0; ow < OW; ow++) {
        const iwLeft = ow * SW - PW;
        const iw0 = max(0, iwLeft), iw1 = min(W, iwLeft + KW);
        let m: i32 = -128;
        for (let ih = ih0; ih < ih1; ih++) {
          const xr = xp + <usize>(ih * W);
          for (let iw = iw0; iw < iw1; iw++) m = max(m, <i32>load<i8>(xr + <usize>iw));
        }
        store<i8>(y + <usize>((p * OH + oh) * OW + ow), <i8>min(hi, max(lo, m)));
      }
    }
  }
}
