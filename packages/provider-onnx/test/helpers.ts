import { sharedMirrorStore } from '@facerec/framework/testing';

/** A model store over a fresh temporary cache, fed only by the shared offline mirror (no network). */
export const mirrorStore = sharedMirrorStore;
