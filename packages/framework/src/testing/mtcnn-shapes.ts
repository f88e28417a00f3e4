/**
 * The shapes of facenet-pytorch's MTCNN state dicts (`pnet.pt`, `rnet.pt`, `onet.pt`), written out from its
 * module definitions as an oracle for tests: the checkpoint reader checks the upstream files against it and
 * the graph builders' tests generate synthetic weights from it. Keys are in the files' order.
 *
 * Layer shapes follow the MTCNN paper's networks: P-Net is fully convolutional with 10/16/32 channels and
 * 1×1 heads; R-Net and O-Net add a dense layer and dense heads (face score, box, and for O-Net the 10
 * landmark coordinates). Dense input sizes are channels × final spatial size: R-Net 64×3×3 = 576, O-Net
 * 128×3×3 = 1152.
 */
export const MTCNN_STATE_DICT_SHAPES = {
  pnet: {
    'conv1.weight': [10, 3, 3, 3],
    'conv1.bias': [10],
    'prelu1.weight': [10],
    'conv2.weight': [16, 10, 3, 3],
    'conv2.bias': [16],
    'prelu2.weight': [16],
    'conv3.weight': [32, 16, 3, 3],
    'conv3.bias': [32],
    'prelu3.weight': [32],
    'conv4_1.weight': [2, 32, 1, 1],
    'conv4_1.bias': [2],
    'conv4_2.weight': [4, 32, 1, 1],
    'conv4_2.bias': [4],
  },
  rnet: {
    'conv1.weight': [28, 3, 3, 3],
    'conv1.bias': [28],
    'prelu1.weight': [28],
    'conv2.weight': [48, 28, 3, 3],
    'conv2.bias': [48],
    'prelu2.weight': [48],
    'conv3.weight': [64, 48, 2, 2],
    'conv3.bias': [64],
    'prelu3.weight': [64],
    'dense4.weight': [128, 576],
    'dense4.bias': [128],
    'prelu4.weight': [128],
    'dense5_1.weight': [2, 128],
    'dense5_1.bias': [2],
    'dense5_2.weight': [4, 128],
    'dense5_2.bias': [4],
  },
  onet: {
    'conv1.weight': [32, 3, 3, 3],
    'conv1.bias': [32],
    'prelu1.weight': [32],
    'conv2.weight': [64, 32, 3, 3],
    'conv2.bias': [64],
    'prelu2.weight': [64],
    'conv3.weight': [64, 64, 3, 3],
    'conv3.bias': [64],
    'prelu3.weight': [64],
    'conv4.weight': [128, 64, 2, 2],
    'conv4.bias': [128],
    'prelu4.weight': [128],
    'dense5.weight': [256, 1152],
    'dense5.bias': [256],
    'prelu5.weight': [256],
    'dense6_1.weight': [2, 256],
    'dense6_1.bias': [2],
    'dense6_2.weight': [4, 256],
    'dense6_2.bias': [4],
    'dense6_3.weight': [10, 256],
    'dense6_3.bias': [10],
  },
} as const satisfies Record<'pnet' | 'rnet' | 'onet', Record<string, readonly number[]>>;
