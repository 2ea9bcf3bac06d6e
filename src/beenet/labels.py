"""Label spaces shared by every part of beenet: BoLD's categories, VAD, OpenPose-18 joints."""

from __future__ import annotations

#: The 26 BoLD categories in the order of the annotation CSV (columns 4..29).
CATEGORIES: tuple[str, ...] = (
    "Peace", "Affection", "Esteem", "Anticipation", "Engagement",
    "Confidence", "Happiness", "Pleasure", "Excitement", "Surprise",
    "Sympathy", "Doubt/Confusion", "Disconnection", "Fatigue", "Embarrassment",
    "Yearning", "Disapproval", "Aversion", "Annoyance", "Anger",
    "Sensitivity", "Sadness", "Disquietment", "Fear", "Pain",
    "Suffering",
)
NUM_CATEGORIES = len(CATEGORIES)

#: Continuous dimensions (annotation CSV columns 30, 31, 32), BoLD scale about 1..10.
VAD_NAMES: tuple[str, ...] = ("valence", "arousal", "dominance")
NUM_VAD = len(VAD_NAMES)
#: Divide raw VAD by this to map it to about [0, 1] (the convention of public BoLD code).
VAD_SCALE = 10.0

#: Threshold at which soft category scores become positive labels (BoLD metric: >= 0.5).
POSITIVE_THRESHOLD = 0.5

#: OpenPose COCO-18 keypoint layout used by BoLD's joints files.
OPENPOSE_JOINTS: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)
NUM_JOINTS = len(OPENPOSE_JOINTS)

#: Limbs of the OpenPose-18 skeleton (the 'openpose' graph layout of ST-GCN / pyskl).
OPENPOSE_EDGES: tuple[tuple[int, int], ...] = (
    (4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8),
    (11, 5), (8, 2), (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14),
)
#: Centre joint of the openpose layout (the neck).
OPENPOSE_CENTER = 1

#: A keypoint whose confidence is below this counts as missing.
MIN_KEYPOINT_CONFIDENCE = 0.1

#: Context label spaces of the frozen experts.
NUM_PLACES = 365
NUM_COCO = 80
#: A clip's context vector: the 365 Places365 scene probabilities, then the 80 COCO object
#: probabilities (each part sums to 1, or the object part is all 0 when nothing was detected).
CONTEXT_DIM = NUM_PLACES + NUM_COCO
#: Where each context part sits in the context vector.
CONTEXT_SLICES: dict[str, slice] = {
    "places": slice(0, NUM_PLACES),
    "objects": slice(NUM_PLACES, CONTEXT_DIM),
}

#: The 80 COCO object classes, in the contiguous order detectors use (torchvision's
#: 91-id category list with the 'N/A' gaps removed).
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)
assert len(COCO_CLASSES) == NUM_COCO
