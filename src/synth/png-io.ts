import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';

// Each PNG is encoded once and written; libvips' operation cache only costs memory here.
sharp.cache(false);

/**
 * Lossless PNG writers for frames and masks. Masks are 8-bit single-channel
 * greyscale whose values are class indices (not palette colours), which is what
 * training loaders and the evaluator read back.
 */
export async function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}

export async function encodeMaskPng(mask: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(mask, { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}

export async function writeRgbPng(path: string, rgb: Uint8Array, width: number, height: number): Promise<void> {
  await writeFile(path, await encodeRgbPng(rgb, width, height));
}

export async function writeMaskPng(path: string, mask: Uint8Array, width: number, height: number): Promise<void> {
  await writeFile(path, await encodeMaskPng(mask, width, height));
}
