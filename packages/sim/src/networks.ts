// The CNNs the Stripes/Tartan/Loom/DPRed papers evaluate (the list in tayler-hetherington/dnn-sim
// python_models/nets.txt), as data. Every network cites where its shapes come from; every profile
// cites where its precisions come from and carries a tag:
//   [V] read in the source named, [D] read in DNNsim (isakedo/DNNsim) source, [R] recalled from the
//   paper and NOT verified against the PDF (see /work/shared/research/sim-targets.md §2.4).
import type { ConvLayer, FcLayer, Layer } from './layers.js';

export type SourceTag = 'V' | 'D' | 'R';

export interface NetworkProfile {
  name: string;
  tag: SourceTag;
  source: string;
  /** Activation precision per profile unit (see Network.units), conv layers only. */
  convAct: number[];
  /** Weight precision per profile unit; 16 when absent (the Stripes/Tartan papers keep 16-bit weights on conv). */
  convWgt?: number[];
  /** Per-FC-layer activation and weight precisions, in network order; 16 when absent. */
  fcAct?: number[];
  fcWgt?: number[];
}

export interface Network {
  name: string;
  /** Where the layer shapes come from, with the tag of how it was read. */
  source: string;
  shapeTag: SourceTag;
  layers: Layer[];
  /**
   * Profile unit of each conv layer, in order. Papers publish one precision per conv layer except
   * GoogLeNet, where the 11 entries are per inception group [R]. Absent: one unit per conv layer.
   */
  units?: number[];
  profiles: NetworkProfile[];
}

function conv(name: string, inC: number, inHW: number, outC: number, k: number, stride = 1, pad = 0, groups = 1): ConvLayer {
  return { type: 'conv', name, inC, inH: inHW, inW: inHW, outC, kH: k, kW: k, stride, pad, groups };
}
const fc = (name: string, inC: number, outC: number): FcLayer => ({ type: 'fc', name, inC, outC });

// Why these stay [R]: the paper's body could not be read with the project's research tools (only its
// abstract), DNNsim ships no profile but its AlexNet example, and a search of public code for the
// profile strings found no copy. What supports them: each 100% profile gives, on the verified shapes,
// the "ideal" speedup the same recalled table lists within 3.5% (README, "How far the profiles are
// verified"); the 99% profiles of LeNet, VGG-19 and VGG-M do not, and are flagged below.
const STRIPES_TABLE = 'Stripes (Judd et al., MICRO 2016) Table 2 per-conv-layer activation precisions, as recalled in sim-targets.md §2.4; not checked against the PDF (not readable here)';

/** The Stripes table's 100% and 99% profiles of one network, both [R]. */
function stripesProfiles(p100: number[], p99: number[], note100 = '', note99 = ''): NetworkProfile[] {
  return [
    { name: '100', tag: 'R', source: `${STRIPES_TABLE} (100%)${note100}`, convAct: p100 },
    { name: '99', tag: 'R', source: `${STRIPES_TABLE} (99%)${note99}`, convAct: p99 },
  ];
}

const alexnet: Network = {
  name: 'alexnet',
  source: 'BVLC/caffe models/bvlc_alexnet/deploy.prototxt @1db8dc7 (shapes, input 3x227x227); groups=2 on conv2/4/5 as in models/bvlc_reference_caffenet/deploy.prototxt @0a4c824 and the two-tower network of Krizhevsky et al. 2012',
  shapeTag: 'V',
  layers: [
    conv('conv1', 3, 227, 96, 11, 4),
    conv('conv2', 96, 27, 256, 5, 1, 2, 2),
    conv('conv3', 256, 13, 384, 3, 1, 1),
    conv('conv4', 384, 13, 384, 3, 1, 1, 2),
    conv('conv5', 384, 13, 256, 3, 1, 1, 2),
    fc('fc6', 9216, 4096),
    fc('fc7', 4096, 4096),
    fc('fc8', 4096, 1000),
  ],
  profiles: [
    { name: '100', tag: 'R', source: `${STRIPES_TABLE} (100% accuracy)`, convAct: [9, 8, 5, 5, 7] },
    { name: '99', tag: 'R', source: `${STRIPES_TABLE} (99% relative accuracy)`, convAct: [9, 7, 4, 5, 7] },
    {
      name: 'dnnsim-99', tag: 'D',
      source: 'isakedo/DNNsim README example precision file for bvlc_alexnet (commit 7548ecf onward): precision = magnitude + fraction bits, 99% relative top-1',
      convAct: [8, 7, 5, 6, 6], convWgt: [9, 9, 8, 9, 9], fcAct: [5, 5, 4], fcWgt: [6, 4, 7],
    },
  ],
};

const nin: Network = {
  name: 'nin',
  source: 'Network in Network ImageNet model (Caffe Model Zoo gist mavenlin/d802a5849de39225bcc6, Lin et al. 2014), input crop 224. Every layer\'s kernel, stride, output channels and padding (VALID/SAME) read in ethereon/caffe-tensorflow examples/imagenet/models/nin.py @c0100fc, the converter\'s rendering of that Caffe model; spatial sizes follow from the 224 crop with Caffe\'s ceil-rounded pools (54/27/13/6)',
  shapeTag: 'V',
  layers: [
    conv('conv1', 3, 224, 96, 11, 4), conv('cccp1', 96, 54, 96, 1), conv('cccp2', 96, 54, 96, 1),
    conv('conv2', 96, 27, 256, 5, 1, 2), conv('cccp3', 256, 27, 256, 1), conv('cccp4', 256, 27, 256, 1),
    conv('conv3', 256, 13, 384, 3, 1, 1), conv('cccp5', 384, 13, 384, 1), conv('cccp6', 384, 13, 384, 1),
    conv('conv4-1024', 384, 6, 1024, 3, 1, 1), conv('cccp7-1024', 1024, 6, 1024, 1), conv('cccp8-1024', 1024, 6, 1000, 1),
  ],
  profiles: stripesProfiles([8, 8, 8, 9, 7, 8, 8, 9, 9, 8, 8, 8], [8, 8, 7, 9, 7, 8, 8, 9, 9, 8, 7, 8]),
};

// GoogLeNet inception: [name, inC, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj], Szegedy et al. 2015 Table 1
const INCEPTIONS: [string, number, number, number, number, number, number, number, number][] = [
  ['3a', 28, 192, 64, 96, 128, 16, 32, 32], ['3b', 28, 256, 128, 128, 192, 32, 96, 64],
  ['4a', 14, 480, 192, 96, 208, 16, 48, 64], ['4b', 14, 512, 160, 112, 224, 24, 64, 64],
  ['4c', 14, 512, 128, 128, 256, 24, 64, 64], ['4d', 14, 512, 112, 144, 288, 32, 64, 64],
  ['4e', 14, 528, 256, 160, 320, 32, 128, 128], ['5a', 7, 832, 256, 160, 320, 32, 128, 128],
  ['5b', 7, 832, 384, 192, 384, 48, 128, 128],
];
const googlenetLayers: Layer[] = [conv('conv1/7x7_s2', 3, 224, 64, 7, 2, 3), conv('conv2/3x3_reduce', 64, 56, 64, 1), conv('conv2/3x3', 64, 56, 192, 3, 1, 1)];
const googlenetUnits = [0, 1, 1];
INCEPTIONS.forEach(([id, hw, inC, n1, r3, n3, r5, n5, pp], i) => {
  const p = `inception_${id}`;
  googlenetLayers.push(
    conv(`${p}/1x1`, inC, hw, n1, 1), conv(`${p}/3x3_reduce`, inC, hw, r3, 1), conv(`${p}/3x3`, r3, hw, n3, 3, 1, 1),
    conv(`${p}/5x5_reduce`, inC, hw, r5, 1), conv(`${p}/5x5`, r5, hw, n5, 5, 1, 2), conv(`${p}/pool_proj`, inC, hw, pp, 1),
  );
  googlenetUnits.push(i + 2, i + 2, i + 2, i + 2, i + 2, i + 2);
});
googlenetLayers.push(fc('loss3/classifier', 1024, 1000));

const googlenet: Network = {
  name: 'googlenet',
  source: 'BVLC/caffe models/bvlc_googlenet/deploy.prototxt @9b89154 (every conv num_output, kernel, stride, pad and the fc, read; input 3x224x224; pools give 56/28/14/7), as in Szegedy et al. 2015 Table 1',
  shapeTag: 'V',
  layers: googlenetLayers,
  units: googlenetUnits,
  profiles: stripesProfiles([10, 8, 10, 9, 8, 10, 9, 8, 9, 10, 7], [10, 8, 9, 8, 8, 9, 10, 8, 9, 10, 8], '; one entry per conv1, conv2 and inception group is itself an unverified reading'),
};

const CHATFIELD = 'Chatfield et al., "Return of the Devil in the Details", BMVC 2014, Table 1 (Caffe Model Zoo gists ksimonyan/';
const vggM: Network = {
  name: 'vgg_m',
  source: `${CHATFIELD}78047f3591446d1d7b91, CNN_M_2048 as in dnn-sim nets.txt); input 224. Conv layers read in the Caffe deploy prototxt named "VGG_CNN_M_2048" as copied in hez2010/EcoTracker model/imagenet-vgg-m-2048.prototxt @9fa0b80: conv1 96x7x7/2, 3x3/2 pool, conv2 256x5x5 stride 2 pad 1, 3x3/2 pool, conv3-5 512x3x3 pad 1; Caffe floors convs and ceils pools, so 109 -> 54 -> 26 -> 13. That copy stops at relu5, so the FC layers are not read: fc6 takes 512x6x6 (assuming pool5 is 3x3/2 like pool1/pool2) -> 4096, fc7 -> 2048 (the model's name), fc8 -> 1000`,
  shapeTag: 'V',
  layers: [
    conv('conv1', 3, 224, 96, 7, 2), conv('conv2', 96, 54, 256, 5, 2, 1), conv('conv3', 256, 13, 512, 3, 1, 1),
    conv('conv4', 512, 13, 512, 3, 1, 1), conv('conv5', 512, 13, 512, 3, 1, 1),
    fc('fc6', 18432, 4096), fc('fc7', 4096, 2048), fc('fc8', 2048, 1000),
  ],
  profiles: stripesProfiles([7, 7, 7, 8, 7], [6, 8, 7, 7, 7], '', '; suspect: gives an ideal speedup of 2.24 where the recalled table lists 2.34'),
};

const vggS: Network = {
  name: 'vgg_s',
  source: `${CHATFIELD}fd8800eeb36e276cd6f9, CNN_S); input 224. Read in Lasagne/Recipes modelzoo/vgg_cnn_s.py @62a7d49, the Lasagne port of that gist's Caffe model: conv1 96x7x7/2, 3x3/3 pool, conv2 256x5x5 stride 1 without padding (an earlier recalled version had pad 1), 2x2/2 pool, conv3-5 512x3x3 pad 1, 3x3/3 pool, fc 4096/4096/1000; pools round up (ignore_border=False), so 109 -> 37 -> 33 -> 17 -> 6`,
  shapeTag: 'V',
  layers: [
    conv('conv1', 3, 224, 96, 7, 2), conv('conv2', 96, 37, 256, 5), conv('conv3', 256, 17, 512, 3, 1, 1),
    conv('conv4', 512, 17, 512, 3, 1, 1), conv('conv5', 512, 17, 512, 3, 1, 1),
    fc('fc6', 18432, 4096), fc('fc7', 4096, 4096), fc('fc8', 4096, 1000),
  ],
  profiles: stripesProfiles([7, 8, 9, 7, 9], [7, 8, 9, 7, 9]),
};

const vgg19Layers: Layer[] = [];
for (const [hw, inC, outC, n] of [[224, 3, 64, 2], [112, 64, 128, 2], [56, 128, 256, 4], [28, 256, 512, 4], [14, 512, 512, 4]] as const) {
  for (let i = 0; i < n; i++) vgg19Layers.push(conv(`conv${vgg19Layers.length}`, i === 0 ? inC : outC, hw, outC, 3, 1, 1));
}
vgg19Layers.forEach((l, i) => (l.name = ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv3_4', 'conv4_1', 'conv4_2', 'conv4_3', 'conv4_4', 'conv5_1', 'conv5_2', 'conv5_3', 'conv5_4'][i]));
vgg19Layers.push(fc('fc6', 25088, 4096), fc('fc7', 4096, 4096), fc('fc8', 4096, 1000));

const vgg19: Network = {
  name: 'vgg19',
  source: 'Simonyan & Zisserman, ICLR 2015, Table 1 configuration E (3x3 pad 1 convolutions, input 224); read in pytorch/vision torchvision/models/vgg.py @02196ff (cfgs E: 64,64,M,128,128,M,256x4,M,512x4,M,512x4,M; 3x3 pad 1 convs, 2x2/2 max pools; classifier 512*7*7 -> 4096 -> 4096 -> 1000)',
  shapeTag: 'V',
  layers: vgg19Layers,
  profiles: stripesProfiles([12, 12, 12, 11, 12, 10, 11, 11, 13, 12, 13, 13, 13, 13, 13, 13], [9, 9, 9, 8, 12, 10, 10, 12, 13, 11, 12, 13, 13, 13, 13, 13], '', '; suspect: gives an ideal speedup of 1.46 where the recalled table lists 1.57'),
};

const lenet: Network = {
  name: 'lenet',
  source: 'BVLC/caffe examples/mnist/lenet.prototxt @9b89154 (input 1x28x28; conv 20 and 50 5x5 stride 1, 2x2/2 pools, ip1 500, ip2 10; read)',
  shapeTag: 'V',
  layers: [conv('conv1', 1, 28, 20, 5), conv('conv2', 20, 12, 50, 5), fc('ip1', 800, 500), fc('ip2', 500, 10)],
  profiles: stripesProfiles([3, 3], [2, 3], '', '; suspect: gives an ideal speedup of 5.62 where the recalled table lists 7.33'),
};

export const NETWORKS: readonly Network[] = [alexnet, nin, googlenet, vggM, vggS, vgg19, lenet];

export function networkNames(): string[] {
  return NETWORKS.map((n) => n.name);
}

export function findNetwork(name: string): Network | undefined {
  return NETWORKS.find((n) => n.name === name.toLowerCase());
}
