"""Checkpoints: our format, mmagic's, strict key checks, and no code execution on load."""
import pickle

import pytest
import torch

from mmdeploy_srcnn.models import SRCNN, CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_with_meta(tmp_path):
    torch.manual_seed(0)
    model = SRCNN(residual=True)
    save_checkpoint(model, tmp_path / 'model.pth', meta={'scales': [1.5, 4.0], 'seed': 0})
    restored = SRCNN(residual=True)
    meta = load_checkpoint(restored, tmp_path / 'model.pth')
    assert meta == {'scales': [1.5, 4.0], 'seed': 0}
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value)


def test_mmagic_checkpoint_with_generator_prefix(tmp_path):
    source = SRCNN()
    state = {f'generator.{key}': value for key, value in source.state_dict().items()}
    torch.save({'meta': {'mmagic_version': '1.0'}, 'state_dict': state}, tmp_path / 'srcnn.pth')
    target = SRCNN()
    load_checkpoint(target, tmp_path / 'srcnn.pth')
    assert torch.equal(target.conv3.weight, source.conv3.weight)


def test_missing_unexpected_and_wrong_shapes_are_listed(tmp_path):
    state = SRCNN().state_dict()
    del state['conv2.bias']
    state['conv4.weight'] = torch.zeros(1)
    state['conv1.weight'] = torch.zeros(64, 3, 5, 5)
    torch.save(state, tmp_path / 'bad.pth')
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(SRCNN(), tmp_path / 'bad.pth')
    message = str(info.value)
    assert 'missing keys: conv2.bias' in message
    assert 'unexpected keys: conv4.weight' in message
    assert 'conv1.weight: checkpoint (64, 3, 5, 5) vs model (64, 3, 9, 9)' in message


def test_scale_aware_mismatch_names_the_trained_settings(tmp_path):
    save_checkpoint(SRCNN(residual=True, scale_aware=True), tmp_path / 'aware.pth',
                    meta={'model': {'residual': True, 'scale_aware': True}})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(SRCNN(residual=True), tmp_path / 'aware.pth')
    assert 'unexpected keys: scale_bias1.weight, scale_bias2.weight' in str(info.value)
    assert ("trained with model settings {'residual': True, 'scale_aware': True}; set them in "
            'the config') in str(info.value)


class _RunsCode:
    def __reduce__(self):
        return (print, ('this must never run',))


def test_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as file:
        pickle.dump({'state_dict': _RunsCode()}, file, protocol=2)
    with pytest.raises(CheckpointError, match='cannot load checkpoint safely'):
        load_checkpoint(SRCNN(), path)
    assert 'this must never run' not in capsys.readouterr().out


@pytest.mark.parametrize('content, message', [
    (None, 'checkpoint file not found'),
    (b'', 'cannot load checkpoint safely'),
    (b'not a checkpoint at all', 'cannot load checkpoint safely'),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / 'model.pth'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(SRCNN(), path)


def test_not_a_state_dict(tmp_path):
    torch.save({'state_dict': [1, 2, 3]}, tmp_path / 'list.pth')
    with pytest.raises(CheckpointError, match='not a checkpoint'):
        load_checkpoint(SRCNN(), tmp_path / 'list.pth')
