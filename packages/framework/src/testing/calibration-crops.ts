import { mkdir, readdir, symlink } from 'node:fs/promises';
import path from 'node:path';

/** The reference crops of the group photos: face-api.js's bbt1–4 and faces, facenet-pytorch's multiface. */
const GROUP_CROP = /^(face-api\.js__(bbt\d|faces)|facenet-pytorch__multiface)__/;

/**
 * The calibration faces of face-api.js's int8 graph, whose accuracy the README reports and whose activation
 * ranges `@facerec/provider-onnx` ships: the 20 MTCNN reference crops of the group photos in
 * `<shared>/reference/crops`, none of them one of the bbt face shots the accuracy is measured on. Linked into
 * `into` (created), which is returned.
 */
export async function linkFaceApiCalibrationCrops(shared: string, into: string): Promise<string> {
  await mkdir(into, { recursive: true });
  const crops = path.join(shared, 'reference', 'crops');
  for (const f of await readdir(crops))
    if (GROUP_CROP.test(f)) await symlink(path.join(crops, f), path.join(into, f));
  return into;
}
